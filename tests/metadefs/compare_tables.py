"""Glance's metadef tables compared row for row, and metadefs export files compared byte for
byte; run with the lab Glance's Python (it has psycopg2 and PyMySQL).

    compare_tables.py snapshot DB_URL OUT.json     the six tables as rows, saved
    compare_tables.py tables A B                   A and B (each a DB_URL or a snapshot) equal?
    compare_tables.py render DB_URL DIR            the files Glance's export_metadefs would
                                                   write from DB_URL's tables (Glance 33's own
                                                   command fails with a TypeError)
    compare_tables.py files DIR_A DIR_B            the same file names with the same bytes?

DB_URL: postgresql://user@host:port/db or mysql://user@host:port/db. Rows are compared
without their ids and timestamps: foreign keys become the namespace's and resource type's
names, and each timestamp only says whether it is set (`updated_at` is NULL after a load).
Exits 1 on any difference, printing each.
"""
import json
import os
import re
import sys
import urllib.parse
from collections import Counter

# table -> (its columns as compared, the SQL that reads them)
QUERIES = {
    "metadef_namespaces": (
        ["namespace", "display_name", "description", "visibility", "protected", "owner",
         "created", "updated"],
        "SELECT namespace, display_name, description, visibility, protected, owner, "
        "created_at IS NOT NULL, updated_at IS NOT NULL FROM metadef_namespaces"),
    "metadef_resource_types": (
        ["name", "protected", "created", "updated"],
        "SELECT name, protected, created_at IS NOT NULL, updated_at IS NOT NULL "
        "FROM metadef_resource_types"),
    "metadef_namespace_resource_types": (
        ["namespace", "resource_type", "properties_target", "prefix", "created", "updated"],
        "SELECT n.namespace, r.name, a.properties_target, a.prefix, a.created_at IS NOT NULL, "
        "a.updated_at IS NOT NULL FROM metadef_namespace_resource_types a "
        "JOIN metadef_namespaces n ON n.id = a.namespace_id "
        "JOIN metadef_resource_types r ON r.id = a.resource_type_id"),
    "metadef_properties": (
        ["namespace", "name", "json_schema", "created", "updated"],
        "SELECT n.namespace, p.name, p.json_schema, p.created_at IS NOT NULL, "
        "p.updated_at IS NOT NULL FROM metadef_properties p "
        "JOIN metadef_namespaces n ON n.id = p.namespace_id"),
    "metadef_objects": (
        ["namespace", "name", "description", "required", "json_schema", "created", "updated"],
        "SELECT n.namespace, o.name, o.description, o.required, o.json_schema, "
        "o.created_at IS NOT NULL, o.updated_at IS NOT NULL FROM metadef_objects o "
        "JOIN metadef_namespaces n ON n.id = o.namespace_id"),
    "metadef_tags": (
        ["namespace", "name", "created", "updated"],
        "SELECT n.namespace, t.name, t.created_at IS NOT NULL, t.updated_at IS NOT NULL "
        "FROM metadef_tags t JOIN metadef_namespaces n ON n.id = t.namespace_id"),
}


def connect(url):
    parsed = urllib.parse.urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    database = parsed.path.lstrip("/")
    if scheme in ("postgresql", "postgres"):
        import psycopg2
        return psycopg2.connect(host=parsed.hostname, port=parsed.port or 5432,
                                user=parsed.username, password=parsed.password or None,
                                dbname=database)
    if scheme in ("mysql", "mariadb"):
        import pymysql
        return pymysql.connect(host=parsed.hostname, port=parsed.port or 3306,
                               user=parsed.username, password=parsed.password or "",
                               database=database, charset="utf8mb4")
    sys.exit(f"compare_tables: unsupported database URL {url}")


def normal(value):
    # MySQL's BOOLEAN and its IS NOT NULL read back as 0/1.
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def read_tables(url):
    """{table: [row as a list]} of a database, or of a snapshot file."""
    if os.path.isfile(url):
        with open(url) as f:
            return json.load(f)
    conn = connect(url)
    try:
        tables = {}
        for table, (_, sql) in QUERIES.items():
            cur = conn.cursor()
            cur.execute(sql)
            tables[table] = [[normal(v) for v in row] for row in cur.fetchall()]
        return tables
    finally:
        conn.close()


def compare_tables(a, b):
    left, right = read_tables(a), read_tables(b)
    differences = 0
    for table, (columns, _) in QUERIES.items():
        rows_a = Counter(json.dumps(r) for r in left[table])
        rows_b = Counter(json.dumps(r) for r in right[table])
        only_a, only_b = rows_a - rows_b, rows_b - rows_a
        same = sum((rows_a & rows_b).values())
        print(f"{table}: {sum(rows_a.values())} and {sum(rows_b.values())} rows, "
              f"{same} equal")
        for row in sorted(only_a.elements()):
            print(f"  only in {a}: {dict(zip(columns, json.loads(row)))}")
        for row in sorted(only_b.elements()):
            print(f"  only in {b}: {dict(zip(columns, json.loads(row)))}")
        differences += sum(only_a.values()) + sum(only_b.values())
    print(f"{differences} row(s) differ")
    return differences == 0


def render(url, directory):
    """Glance's export format (its metadata.py: one `json.dumps` line per namespace, named
    after the display name without `[\\W_]+`), written from the rows in id order, associations
    in resource type order (InnoDB's primary key order, the order Glance's unordered SELECT
    gives on MySQL)."""
    conn = connect(url)
    cur = conn.cursor()
    ph = "%s"
    cur.execute("SELECT id, namespace, display_name, description, visibility, protected "
                "FROM metadef_namespaces ORDER BY id")
    for ns_id, namespace, display_name, description, visibility, protected in cur.fetchall():
        cur.execute("SELECT r.name, a.prefix, a.properties_target "
                    "FROM metadef_namespace_resource_types a JOIN metadef_resource_types r "
                    f"ON r.id = a.resource_type_id WHERE a.namespace_id = {ph} "
                    "ORDER BY a.resource_type_id", (ns_id,))
        associations = [{"name": n, "prefix": p, "properties_target": t}
                        for n, p, t in cur.fetchall()]
        cur.execute(f"SELECT name, json_schema FROM metadef_properties WHERE namespace_id = {ph} "
                    "ORDER BY id", (ns_id,))
        properties = {n: json.loads(s) for n, s in cur.fetchall()}
        cur.execute("SELECT name, description, json_schema FROM metadef_objects "
                    f"WHERE namespace_id = {ph} ORDER BY id", (ns_id,))
        objects = [{"name": n, "description": d, "properties": json.loads(s)}
                   for n, d, s in cur.fetchall()]
        cur.execute(f"SELECT name FROM metadef_tags WHERE namespace_id = {ph} ORDER BY id",
                    (ns_id,))
        tags = [{"name": n} for (n,) in cur.fetchall()]
        document = {
            "namespace": namespace, "display_name": display_name, "description": description,
            "visibility": visibility,
            "protected": None if protected is None else bool(protected),
            "resource_type_associations": associations, "properties": properties,
            "objects": objects, "tags": tags,
        }
        name = re.sub(r"[\W_]+", "", display_name, flags=re.UNICODE)
        with open(os.path.join(directory, name + ".json"), "w") as f:
            f.write(json.dumps(document))
    conn.close()


def compare_files(a, b):
    names_a, names_b = sorted(os.listdir(a)), sorted(os.listdir(b))
    differences = 0
    for name in sorted(set(names_a) | set(names_b)):
        if name not in names_b or name not in names_a:
            print(f"  {name}: only in {a if name in names_a else b}")
            differences += 1
            continue
        with open(os.path.join(a, name), "rb") as fa, open(os.path.join(b, name), "rb") as fb:
            left, right = fa.read(), fb.read()
        if left != right:
            at = next(i for i in range(min(len(left), len(right)) + 1)
                      if i == min(len(left), len(right)) or left[i] != right[i])
            print(f"  {name}: differs at byte {at}: {left[max(0, at - 40):at + 40]!r} "
                  f"vs {right[max(0, at - 40):at + 40]!r}")
            differences += 1
    print(f"{len(names_a)} and {len(names_b)} files, {differences} differ")
    return differences == 0


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "snapshot":
        with open(args[1], "w") as f:
            json.dump(read_tables(args[0]), f)
        ok = True
    elif command == "tables":
        ok = compare_tables(*args)
    elif command == "render":
        render(*args)
        ok = True
    elif command == "files":
        ok = compare_files(*args)
    else:
        sys.exit(__doc__)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
