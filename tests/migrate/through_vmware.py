"""glint migrate, file -> VMware -> RBD: each image's copy on the vCenter simulator's
datastores has the bytes uploaded, a run cut by kill -9 and started again copies nothing twice,
and with --delete-source the datastore files go while the RBD copies read back whole.

Run by scripts/test-migrate, which provides (environment):
  GLINT_BIN            a glint built with --features rbd
  GLINT_TEST_VMWARE_*  the lab's vCenter simulator (scripts/lab-vcsim env): host, user,
                       password, CA file, datacenter, datastores and the folder holding them
  GLINT_TEST_CEPH_*    the lab's Ceph (scripts/lab-ceph env): conf, pool, user
  GLINT_TEST_DB_URL    the database (default SQLite in the temp dir)
  MIGRATE_IMAGES       how many images (8), MIGRATE_SIZE bytes each (8 MiB)
  GLINT_KEEP_TMP       =1 to keep the temp dir (config, database, logs) even when all passed
Prints TAP-style lines; exits 1 on any failure.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

from harness import Tap, free_port, request, upload_random_image, wait_until_serving

BIN = os.environ["GLINT_BIN"]
IMAGES = int(os.environ.get("MIGRATE_IMAGES", "8"))
SIZE = int(os.environ.get("MIGRATE_SIZE", str(8 << 20)))
tap = Tap()
check, note = tap.check, tap.note


def image_record(port, image_id):
    status, body = request(port, "GET", f"/v2/images/{image_id}")
    if status != 200:
        raise SystemExit(f"GET /v2/images/{image_id}: {status} {body[:200]!r}")
    return json.loads(body)


def stores_of(record):
    return sorted(s for s in record.get("stores", "").split(",") if s)


def md5_of_file(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    env = os.environ
    work = tempfile.mkdtemp(prefix="glint-migrate-vmware-")
    port = free_port()
    image_dir = "glint-migrate-" + uuid.uuid4().hex[:12]
    datacenter = env["GLINT_TEST_VMWARE_DATACENTER"]
    datastores = [d for d in env["GLINT_TEST_VMWARE_DATASTORES"].split(",") if d]
    datastore_root = env["GLINT_TEST_VMWARE_DATASTORE_DIR"]
    # Our image folder on each datastore, as the simulator keeps it on disk.
    folders = [os.path.join(datastore_root, ds, image_dir) for ds in datastores]
    ceph = ["-c", env["GLINT_TEST_CEPH_CONF"], "--id", env["GLINT_TEST_CEPH_USER"]]
    pool = env["GLINT_TEST_CEPH_POOL"]
    # The first datastore is preferred; the others are there so that a location naming any of
    # them is served.
    datastore_lines = "\n".join(
        f"vmware_datastores = {datacenter}:{ds}:{100 if n == 0 else 50}"
        for n, ds in enumerate(datastores))
    conf = os.path.join(work, "glint.conf")
    with open(conf, "w") as f:
        f.write(f"""[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
enabled_backends = local:file, vcenter:vmware, ceph:rbd
show_multiple_locations = true
[database]
connection = {env.get("GLINT_TEST_DB_URL", f"sqlite:///{work}/glint.db")}
[glance_store]
default_backend = local
[local]
filesystem_store_datadir = {work}/images
[vcenter]
vmware_server_host = {env["GLINT_TEST_VMWARE_HOST"]}
vmware_server_username = {env["GLINT_TEST_VMWARE_USER"]}
vmware_server_password = {env["GLINT_TEST_VMWARE_PASSWORD"]}
vmware_ca_file = {env["GLINT_TEST_VMWARE_CA_FILE"]}
{datastore_lines}
vmware_store_image_dir = /{image_dir}
vmware_task_poll_interval = 1
[ceph]
weight = 100
rbd_store_pool = {pool}
rbd_store_user = {env["GLINT_TEST_CEPH_USER"]}
rbd_store_ceph_conf = {env["GLINT_TEST_CEPH_CONF"]}
""")
    run_env = {**os.environ, "GLINT_DATA": work, "RUST_LOG": "warn"}
    subprocess.run([BIN, "--config", conf, "db", "sync"], env=run_env, check=True,
                   capture_output=True)
    server_log = os.path.join(work, "serve.log")

    def start_server():
        """Starts the server (its log appended to serve.log) and waits until it answers: its
        start-up recovery, the sweep of unfinished uploads included, runs before it serves."""
        proc = subprocess.Popen([BIN, "--config", conf, "serve"], env=run_env,
                                stdout=open(server_log, "a"), stderr=subprocess.STDOUT)
        wait_until_serving(port)
        return proc

    server = start_server()
    ids, md5s, sha512s, recorded = [], {}, {}, {}

    def migrate(*args, log):
        """Runs glint migrate to its end; its standard error is kept in the temp dir."""
        done = subprocess.run([BIN, "--config", conf, "migrate", *args], env=run_env,
                              capture_output=True, text=True)
        with open(os.path.join(work, log), "w") as f:
            f.write(done.stderr)
        return done

    def vcenter_files(image_id):
        """The datastore files of the image's vcenter locations (from its `locations`)."""
        files = []
        for location in image_record(port, image_id).get("locations", []):
            url = urllib.parse.urlsplit(location["url"])
            if url.scheme != "vsphere":
                continue
            query = urllib.parse.parse_qs(url.query)
            relative = urllib.parse.unquote(url.path).removeprefix("/folder/")
            files.append(os.path.join(datastore_root, query["dsName"][0], relative))
        return files

    def folder_listing():
        return sorted(name for folder in folders if os.path.isdir(folder)
                      for name in os.listdir(folder))

    try:
        for n in range(IMAGES):
            image_id, md5, sha512 = upload_random_image(port, f"migrate-vmware-{n}", SIZE)
            ids.append(image_id)
            md5s[image_id], sha512s[image_id] = md5, sha512
        for image_id in ids:
            record = image_record(port, image_id)
            recorded[image_id] = (record.get("checksum"), record.get("os_hash_algo"),
                                  record.get("os_hash_value"))
        check(all(recorded[i] == (md5s[i], "sha512", sha512s[i]) for i in ids),
              f"{IMAGES} images of {SIZE} bytes uploaded to the file store, md5 and sha512 "
              "recorded")

        # file -> VMware, killed in the middle of an upload: once a quarter of the images are
        # done and the next one's temporary `<id>.<hex>.partial` holds some but less than half
        # of its bytes. Copies of 8 MiB to the simulator take a few hundredths of a second and
        # migrate prints an image's line only once the last image has started, so the image
        # folder is watched, not the output. One copy at a time, so that no other image is
        # between its commit (the move of the temporary file into place) and its record: a
        # kill there is made on purpose below.
        first = subprocess.Popen([BIN, "--config", conf, "migrate", "--from", "local",
                                  "--to", "vcenter", "--parallel", "1"], env=run_env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        first_lines = []
        drain = threading.Thread(target=lambda: first_lines.extend(first.stderr))
        drain.start()

        def uploading(folder_names):
            for folder in folders:
                for name in folder_names:
                    if name.endswith(".partial"):
                        try:
                            size = os.stat(os.path.join(folder, name)).st_size
                        except FileNotFoundError:
                            continue
                        if 0 < size < SIZE // 2:
                            return True
            return False

        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline:
            names = folder_listing()
            if sum(n in md5s for n in names) >= max(1, IMAGES // 4) and uploading(names):
                break
            time.sleep(0.001)
        first.send_signal(signal.SIGKILL)
        first.wait()
        drain.join()
        with open(os.path.join(work, "migrate-1-killed.log"), "w") as f:
            f.write("".join(first_lines))
        done_before = [l.split(":")[0] for l in first_lines if "copied to vcenter" in l]
        names = folder_listing()
        partial = [n for n in names if n.endswith(".partial")]
        committed_before = [n for n in names if n in md5s]
        check(first.returncode == -signal.SIGKILL and partial,
              f"local -> vcenter killed (-9) mid-upload, {len(done_before)} of {IMAGES} "
              f"images reported done; the image folder holds {len(committed_before)} "
              f"image file(s) and {len(partial)} temporary one(s)")

        # The sweep (a serving node's start-up recovery, then every minute) removes temporary
        # files older than its age limit (15 minutes): age ours past it and restart. The
        # simulator goes on writing what the dead client had sent until it sees the
        # connection closed, so first wait until the temporary files stop growing.
        def sizes():
            return {(folder, name): os.stat(os.path.join(folder, name)).st_size
                    for folder in folders for name in partial
                    if os.path.exists(os.path.join(folder, name))}

        settled, last, since = time.monotonic() + 10, sizes(), time.monotonic()
        while time.monotonic() < settled and time.monotonic() - since < 0.5:
            time.sleep(0.05)
            if sizes() != last:
                last, since = sizes(), time.monotonic()
        note(f"temporary file sizes after the kill: {sorted(last.values())} of {SIZE}")
        old = time.time() - 3600
        for folder in folders:
            for name in partial:
                if os.path.exists(os.path.join(folder, name)):
                    os.utime(os.path.join(folder, name), (old, old))
        server.terminate()
        server.wait()
        server = start_server()
        swept = [n for n in folder_listing() if n.endswith(".partial")]
        check(partial and not swept, f"the sweep at restart removed the kill's temporary "
              f"file(s) ({len(partial)} -> {len(swept)})")

        second = migrate("--from", "local", "--to", "vcenter", "--parallel", "2",
                         log="migrate-2-vcenter.log")
        check(second.returncode == 0, "local -> vcenter run again finishes")
        lines = [l for l in second.stderr.splitlines() if l.split(":")[0] in md5s]
        again = [l.split(":")[0] for l in lines if "already in vcenter" in l]
        copied = [l for l in lines if "copied to vcenter" in l]
        note(f"second run: {len(copied)} copied, {len(again)} already there")
        check(set(done_before) <= set(committed_before) == set(again) and copied,
              f"images finished before the kill are not copied again ({len(again)} already "
              f"there, {len(copied)} copied)")
        check(len(lines) == IMAGES and all("FAILED" not in l for l in lines),
              f"every image accounted for ({len(lines)} lines)")

        # A kill between the commit and the record leaves the image's file in place with no
        # location naming it; the next run should verify and record it. Made here: one
        # image's vcenter copy removed, and its file put back where the store writes.
        victim = ids[-1]
        status, body = request(port, "DELETE", f"/v2/stores/vcenter/{victim}")
        check(status == 204 and not [n for n in folder_listing() if n == victim],
              f"{victim}'s vcenter copy removed ({status})")
        local_file = [urllib.parse.unquote(urllib.parse.urlsplit(l["url"]).path)
                      for l in image_record(port, victim).get("locations", [])
                      if l["url"].startswith("file://")][0]
        shutil.copyfile(local_file, os.path.join(folders[0], victim))
        leftover = migrate("--from", "local", "--to", "vcenter", log="migrate-4-recover.log")
        recovered = [l for l in leftover.stderr.splitlines()
                     if l.startswith(victim) and "interrupted run left" in l]
        check(leftover.returncode == 0 and recovered,
              "a committed but unrecorded datastore file is verified and recorded by the next "
              "run")
        if leftover.returncode != 0:
            note("; ".join(l for l in leftover.stderr.splitlines() if l.startswith(victim)))

        good = 0
        for image_id in ids:
            record = image_record(port, image_id)
            stores = stores_of(record)
            files = vcenter_files(image_id)
            sums = [md5_of_file(p) if os.path.isfile(p) else None for p in files]
            unchanged = (record.get("checksum"), record.get("os_hash_algo"),
                         record.get("os_hash_value")) == recorded[image_id]
            if (stores == ["local", "vcenter"] and len(files) == 1
                    and sums == [md5s[image_id]] and unchanged
                    and os.path.dirname(files[0]) in folders):
                good += 1
            else:
                note(f"{image_id}: stores {stores}, datastore files {files} md5 {sums}, "
                     f"checksum and hash unchanged: {unchanged}")
        check(good == IMAGES, f"{good} of {IMAGES} images in local and vcenter, one datastore "
              "file each with the uploaded md5, checksum and os_hash_value unchanged")
        committed = [n for n in folder_listing() if n in md5s]
        check(sorted(committed) == sorted(ids),
              f"the image folder holds one file per image ({len(committed)})")

        # VMware -> RBD, the datastore copies removed once each RBD copy is verified.
        to_ceph = migrate("--from", "vcenter", "--to", "ceph", "--delete-source", "--parallel",
                        "2", log="migrate-3-ceph.log")
        check(to_ceph.returncode == 0, "vcenter -> ceph with --delete-source finishes")
        lines = [l for l in to_ceph.stderr.splitlines() if l.split(":")[0] in md5s]
        check(len(lines) == IMAGES and all("removed from vcenter" in l for l in lines),
              f"every image copied and removed from vcenter ({len(lines)} lines)")
        good = 0
        for image_id in ids:
            record = image_record(port, image_id)
            stores = stores_of(record)
            unchanged = (record.get("checksum"), record.get("os_hash_algo"),
                         record.get("os_hash_value")) == recorded[image_id]
            schemes = sorted(urllib.parse.urlsplit(l["url"]).scheme
                             for l in record.get("locations", []))
            if stores == ["ceph", "local"] and unchanged and schemes == ["file", "rbd"]:
                good += 1
            else:
                note(f"{image_id}: stores {stores}, location schemes {schemes}, checksum and "
                     f"hash unchanged: {unchanged}")
        check(good == IMAGES, f"{good} of {IMAGES} images in ceph and local only, checksum "
              "and os_hash_value unchanged")
        left = folder_listing()
        check(not [n for n in left if n in md5s],
              f"no image file left in the datastore folder ({len(left)} file(s) there: {left})")
        listing = subprocess.run(["rbd", *ceph, "ls", pool], capture_output=True,
                                 text=True).stdout.split()
        check(all(i in listing for i in ids),
              f"an RBD image for each image in pool {pool}")

        # Reads: ceph has weight 100, so it is read first; then, with the local copies
        # removed, ceph is the only place left to read from.
        good = 0
        for image_id in ids:
            status, data = request(port, "GET", f"/v2/images/{image_id}/file")
            good += status == 200 and hashlib.md5(data).hexdigest() == md5s[image_id]
        check(good == IMAGES, f"{good} of {IMAGES} downloads (ceph weighted first) have the "
              "uploaded md5")
        removed = 0
        for image_id in ids:
            status, body = request(port, "DELETE", f"/v2/stores/local/{image_id}")
            removed += status == 204
            if status != 204:
                note(f"DELETE /v2/stores/local/{image_id}: {status} {body[:200]!r}")
        check(removed == IMAGES, f"local copies removed ({removed})")
        good = 0
        for image_id in ids:
            stores = stores_of(image_record(port, image_id))
            status, data = request(port, "GET", f"/v2/images/{image_id}/file")
            if (stores == ["ceph"] and status == 200
                    and hashlib.md5(data).hexdigest() == md5s[image_id]):
                good += 1
            else:
                note(f"{image_id}: stores {stores}, download {status}")
        check(good == IMAGES, f"{good} of {IMAGES} images in ceph only, read back whole")
    finally:
        deleted = 0
        for image_id in ids:
            try:
                deleted += request(port, "DELETE", f"/v2/images/{image_id}")[0] == 204
            except OSError:
                pass
        server.terminate()
        server.wait()
        leftovers = folder_listing()
        if leftovers:
            note(f"left in the datastore folder, removed now: {leftovers}")
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    if ids:
        check(deleted == len(ids), f"images deleted ({deleted})")
        listing = subprocess.run(["rbd", *ceph, "ls", pool], capture_output=True,
                                 text=True).stdout.split()
        check(not [n for n in listing if n.split(".")[0] in md5s],
              "deleting the images removed their RBD images")
    # The server logs at warn level: anything it wrote is worth a look.
    with open(server_log, errors="replace") as f:
        logged = [l.rstrip() for l in f if l.strip()]
    for line in logged[:20]:
        note(f"serve: {line}")
    if tap.failures or env.get("GLINT_KEEP_TMP") == "1":
        note(f"config, database and logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"# {IMAGES} images, {tap.failures} failure(s)")
    sys.exit(1 if tap.failures else 0)


main()
