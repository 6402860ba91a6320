#!/usr/bin/env python3
"""Writes the crafted disk images of testdata/formats/ (see README.md and cases.tsv).

Every file is built here, byte by byte, from the formats' specifications: no tool
output, no timestamps, no random identifiers, so that running this again rewrites the
same bytes. Standard library only.

    python3 testdata/formats/make.py [output directory]
"""

import hashlib
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20
SECTOR = 512


def pad(data, size, fill=b"\0"):
    """`data` extended with `fill` to `size` bytes."""
    assert len(data) <= size, (len(data), size)
    return data + fill * (size - len(data))


def put(buf, at, data):
    """Writes `data` into the bytearray `buf` at `at`."""
    buf[at:at + len(data)] = data


def guid(text):
    """A GUID as Microsoft stores it: the first three fields little-endian."""
    a, b, c, d, e = text.split("-")
    return (struct.pack("<IHH", int(a, 16), int(b, 16), int(c, 16))
            + bytes.fromhex(d) + bytes.fromhex(e))


# --- qcow2 (QEMU docs/interop/qcow2.txt) -------------------------------------------

QCOW2_EXT_END = 0x00000000
QCOW2_EXT_BACKING_FORMAT = 0xE2792ACA
QCOW2_EXT_DATA_FILE = 0x44415441


def qcow2(size=MiB, version=3, cluster_bits=9, backing=None, backing_format=None,
          incompatible=0, autoclear=0, data_file=None):
    """A complete, empty qcow2 image: header cluster, refcount table, one refcount
    block, L1 table; every cluster one cluster long (512 bytes by default), so the
    whole image is four clusters."""
    cluster = 1 << cluster_bits
    extended_l2 = bool(incompatible & (1 << 4))
    l2_entries = cluster // (16 if extended_l2 else 8)
    l1_size = -(-size // (l2_entries * cluster))
    assert l1_size * 8 <= cluster
    refcount_table, refcount_block, l1_table = cluster, 2 * cluster, 3 * cluster

    header_length = 112 if version >= 3 else 72
    extensions = b""
    if version >= 3 or backing_format:
        def ext(kind, data):
            return struct.pack(">II", kind, len(data)) + pad(data, -(-len(data) // 8) * 8)
        if backing_format:
            extensions += ext(QCOW2_EXT_BACKING_FORMAT, backing_format.encode())
        if data_file:
            extensions += ext(QCOW2_EXT_DATA_FILE, data_file.encode())
        extensions += ext(QCOW2_EXT_END, b"")
    backing_offset = header_length + len(extensions) if backing else 0
    backing_name = backing.encode() if backing else b""

    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb", version, backing_offset, len(backing_name), cluster_bits, size,
        0,                      # crypt_method
        l1_size, l1_table,
        refcount_table, 1,      # refcount_table_offset, refcount_table_clusters
        0, 0)                   # nb_snapshots, snapshots_offset
    if version >= 3:
        header += struct.pack(">QQQII", incompatible, 0, autoclear,
                              4,  # refcount_order: 16-bit refcounts
                              header_length)
        header += b"\0" * 8     # compression_type (zlib) and padding
    assert len(header) == header_length
    first = pad(header + extensions + backing_name, cluster)

    table = pad(struct.pack(">Q", refcount_block), cluster)
    # 16-bit refcounts: the four clusters of the image are each used once.
    block = pad(struct.pack(">4H", 1, 1, 1, 1), cluster)
    l1 = b"\0" * cluster
    return first + table + block + l1


# --- qed (QEMU docs/interop/qed_spec.txt) ----------------------------------------------

def qed(size=MiB, backing=None):
    """A qed image: one 4 KiB header cluster, then the L1 table (four clusters, as
    qemu-img writes it: qemu refuses a one-cluster table)."""
    cluster = 4096
    features = 0x01 if backing else 0  # QED_F_BACKING_FILE
    name = backing.encode() if backing else b""
    header = struct.pack(
        "<4sIIIQQQQQII",
        b"QED\0", cluster,
        4,              # table_size, in clusters
        1,              # header_size, in clusters
        features, 0, 0,
        cluster,        # l1_table_offset
        size,
        64 if backing else 0, len(name))
    return pad(pad(header, 64) + name, cluster) + b"\0" * 4 * cluster


# --- vmdk (VMware "Virtual Disk Format 5.0") ----------------------------------------

VMDK_FLAGS_SPARSE = 0x3          # valid newline test, redundant grain table
VMDK_FLAGS_STREAM = 0x30001      # valid newline test, compressed grains, markers
GD_AT_END = 0xFFFFFFFFFFFFFFFF


def vmdk_descriptor(create_type, extents, extra=""):
    return (
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=5eed5eed\n"
        "parentCID=ffffffff\n"
        f"createType=\"{create_type}\"\n"
        f"{extra}"
        "\n"
        "# Extent description\n"
        + "".join(e + "\n" for e in extents) +
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        "ddb.virtualHWVersion = \"4\"\n"
        "ddb.geometry.cylinders = \"2\"\n"
        "ddb.geometry.heads = \"16\"\n"
        "ddb.geometry.sectors = \"63\"\n"
        "ddb.adapterType = \"ide\"\n"
    ).encode()


def vmdk_header(version=1, flags=VMDK_FLAGS_SPARSE, capacity=2048, desc_sector=1,
                desc_sectors=1, rgd=0, gd=0, overhead=0, compress=0):
    header = struct.pack(
        "<4sIIQQQQIQQQB4sH",
        b"KDMV", version, flags, capacity,
        128,            # grain size: 64 KiB
        desc_sector, desc_sectors,
        512,            # grain table entries per grain table
        rgd, gd, overhead,
        0,              # unclean shutdown
        b"\n \r\n",     # newline detection
        compress)
    return pad(header, SECTOR)


def vmdk_sparse(descriptor, desc_sectors=None, header_desc_sectors=None,
                header_desc_sector=1, before_descriptor=b""):
    """A complete, empty monolithicSparse extent of 1 MiB: header, descriptor,
    redundant grain directory and table, grain directory and table."""
    descriptor = before_descriptor + descriptor
    used = desc_sectors or -(-len(descriptor) // SECTOR)
    at = 1 + used                       # first sector after the descriptor
    rgd, rgt, gd, gt = at, at + 1, at + 5, at + 6
    end = gt + 4
    return (vmdk_header(desc_sector=header_desc_sector,
                        desc_sectors=header_desc_sectors or used,
                        rgd=rgd, gd=gd, overhead=end)
            + pad(descriptor, used * SECTOR)
            + pad(struct.pack("<I", rgt), SECTOR) + b"\0" * 4 * SECTOR
            + pad(struct.pack("<I", gt), SECTOR) + b"\0" * 4 * SECTOR)


def vmdk_marker(value, kind, size=0):
    return pad(struct.pack("<QII", value, size, kind), SECTOR)


def vmdk_stream_optimized(descriptor, footer_desc_sector=1, footer_desc_sectors=1,
                          eos=None, extra_sectors=b""):
    """An empty streamOptimized extent laid out as VMware's streaming writers do it:
    the header says the grain directory is at the end (gd_offset = -1), and the
    stream closes with the grain table, the grain directory, a footer marker, a
    footer (the header again, with the real gd_offset) and an end-of-stream marker."""
    body = pad(descriptor, SECTOR) + extra_sectors
    at = 1 + len(body) // SECTOR
    gt_marker, gt, gd_marker, gd = at, at + 1, at + 5, at + 6
    footer_marker = gd + 1
    head = vmdk_header(version=3, flags=VMDK_FLAGS_STREAM, gd=GD_AT_END,
                       overhead=at, compress=1)
    footer = vmdk_header(version=3, flags=VMDK_FLAGS_STREAM, gd=gd, overhead=at,
                         compress=1, desc_sector=footer_desc_sector,
                         desc_sectors=footer_desc_sectors)
    return (head + body
            + vmdk_marker(4, 1) + b"\0" * 4 * SECTOR           # grain table
            + vmdk_marker(1, 2) + pad(struct.pack("<I", gt), SECTOR)  # grain directory
            + vmdk_marker(1, 3) + footer                        # footer
            + (eos if eos is not None else vmdk_marker(0, 0)))  # end of stream


# --- vhd (Microsoft "Virtual Hard Disk Image Format Specification") -----------------

def vhd_checksum(data):
    return (~sum(data)) & 0xFFFFFFFF


def vhd_footer(size, disk_type, data_offset):
    footer = bytearray(struct.pack(
        ">8sIIQI4sI4sQQHBBII16sB",
        b"conectix",
        2,                      # features: reserved bit, always set
        0x00010000,             # file format version
        data_offset,
        0,                      # timestamp
        b"qem2", 0x00050003, b"Wi2k",
        size, size,
        30, 4, 17,              # geometry; "qem2" disks are sized by current_size
        disk_type,
        0,                      # checksum, set below
        bytes(range(0x10, 0x20)),  # unique id
        0))
    footer = bytearray(pad(bytes(footer), SECTOR))
    put(footer, 64, struct.pack(">I", vhd_checksum(footer)))
    return bytes(footer)


def vhd_differencing(size=MiB, parent="/etc/passwd"):
    """A differencing VHD: footer copy, dynamic disk header naming a parent (by name
    and by a "MacX" file URL locator), block allocation table, locator data, footer."""
    footer = vhd_footer(size, 4, SECTOR)
    locator_data = pad(("file://" + parent).encode(), SECTOR)
    bat_at, locator_at = 3 * SECTOR, 4 * SECTOR
    header = bytearray(pad(struct.pack(
        ">8sQQIIII16sI4s",
        b"cxsparse", GD_AT_END, bat_at,
        0x00010000,             # header version
        1,                      # max table entries
        2 * MiB,                # block size
        0,                      # checksum, set below
        bytes(range(0x20, 0x30)),  # parent unique id
        0, b"\0" * 4), 1024))
    put(header, 64, pad(os.path.basename(parent).encode("utf-16-be"), 512))
    put(header, 576, struct.pack(">4sIIIQ", b"MacX", 1, len("file://" + parent), 0,
                                 locator_at))
    put(header, 36, struct.pack(">I", vhd_checksum(header)))
    bat = pad(b"\xff\xff\xff\xff", SECTOR)
    return footer + bytes(header) + bat + locator_data + footer


# --- vhdx ([MS-VHDX]) ---------------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def with_crc32c(data, at=4):
    data = bytearray(data)
    put(data, at, struct.pack("<I", crc32c(data)))
    return bytes(data)


VHDX_BAT = guid("2DC27766-F623-4200-9D64-115E9BFD4A08")
VHDX_METADATA = guid("8B7CA206-4790-4B9A-B8FE-575F050F886E")


def vhdx_metadata_backwards():
    """The first 256 KiB of a VHDX (file identifier, both headers, region table, all
    checksummed) whose region table puts the metadata region at offset 0, over the
    file identifier: a structure a single forward pass has already gone past."""
    ident = pad(b"vhdxfile" + "glint testdata".encode("utf-16-le"), 64 * 1024)

    def header(sequence):
        h = struct.pack("<4sIQ16s16s16sHHIQ", b"head", 0, sequence,
                        bytes(range(0x40, 0x50)), bytes(range(0x50, 0x60)), b"\0" * 16,
                        0, 1, MiB, MiB)
        return pad(with_crc32c(pad(h, 4096)), 64 * 1024)

    regions = struct.pack("<4sIII", b"regi", 0, 2, 0)
    regions += VHDX_BAT + struct.pack("<QII", 3 * MiB, MiB, 1)
    regions += VHDX_METADATA + struct.pack("<QII", 0, MiB, 1)
    table = with_crc32c(pad(regions, 64 * 1024))
    return ident + header(1) + header(2) + table


# --- MBR / GPT (UEFI 2.x, chapter 5) ------------------------------------------------

def mbr_entry(boot, os_type, first_lba, sectors, chs_start=b"\x00\x02\x00",
              chs_end=b"\xff\xff\xff"):
    return struct.pack("<B3sB3sII", boot, chs_start, os_type, chs_end, first_lba, sectors)


def mbr(entries):
    """A master boot record with the given partition entries (and no boot code)."""
    record = bytearray(SECTOR)
    for i, entry in enumerate(entries):
        put(record, 446 + 16 * i, entry)
    put(record, 510, b"\x55\xaa")
    return bytes(record)


def gpt_disk(entries, sectors=16):
    """A small GPT disk: the MBR with the given partition entries, the GPT header at
    LBA 1 with a four-entry partition array at LBA 2 (one Linux partition, LBA 3 to
    12), their backups at the end, and the CRCs right."""

    part = pad(guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4")   # Linux filesystem
               + bytes(range(0x60, 0x70))                     # unique partition GUID
               + struct.pack("<QQQ", 3, sectors - 4, 0)
               + "data".encode("utf-16-le"), 128)
    array = pad(part, 4 * 128)
    array_crc = zlib.crc32(array)

    def gpt_header(current, backup, array_lba):
        h = bytearray(struct.pack(
            "<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, 0, 0,
            current, backup, 3, sectors - 4, bytes(range(0x70, 0x80)),
            array_lba, 4, 128, array_crc))
        put(h, 16, struct.pack("<I", zlib.crc32(bytes(h))))
        return pad(bytes(h), SECTOR)

    disk = mbr(entries) + gpt_header(1, sectors - 1, 2) + array
    disk = pad(disk, (sectors - 2) * SECTOR)
    return disk + array + gpt_header(sectors - 1, 1, sectors - 2)


def protective(boot=0, first_lba=1, sectors=15):
    return mbr_entry(boot, 0xEE, first_lba, sectors)


# --- LUKS2 (cryptsetup "LUKS2 On-Disk Format Specification") ------------------------

def luks2():
    """Both LUKS2 binary headers with their JSON areas (16 KiB each), checksummed."""
    hdr_size = 16 * 1024
    json_area = pad(
        b'{"keyslots":{},"tokens":{},"segments":{},"digests":{},'
        b'"config":{"json_size":"12288","keyslots_size":"0"}}', hdr_size - 4096)

    def header(offset):
        h = bytearray(4096)
        put(h, 0, b"LUKS\xba\xbe" if offset == 0 else b"SKUL\xba\xbe")
        put(h, 6, struct.pack(">HQQ", 2, hdr_size, 1))
        put(h, 72, b"sha256")
        put(h, 104, bytes(range(64)))                                  # salt
        put(h, 168, b"00000000-0000-4000-8000-000000000000")           # uuid
        put(h, 256, struct.pack(">Q", offset))
        put(h, 448, hashlib.sha256(bytes(h) + json_area).digest())
        return bytes(h) + json_area

    return header(0) + header(hdr_size)


# --- ISO 9660 (ECMA-119) --------------------------------------------------------------

def iso9660_descriptors(blocks):
    """A primary volume descriptor and the set terminator, for a volume of `blocks`
    2 KiB blocks: what goes at 32 KiB."""
    def both16(v):
        return struct.pack("<H", v) + struct.pack(">H", v)

    def both32(v):
        return struct.pack("<I", v) + struct.pack(">I", v)

    pvd = bytearray(2048)
    put(pvd, 0, b"\x01CD001\x01")
    put(pvd, 8, b"LINUX".ljust(32))
    put(pvd, 40, b"POLYGLOT".ljust(32))
    put(pvd, 80, both32(blocks))
    put(pvd, 120, both16(1))
    put(pvd, 124, both16(1))
    put(pvd, 128, both16(2048))
    put(pvd, 881, b"\x01")                      # file structure version
    terminator = pad(b"\xffCD001\x01", 2048)
    return bytes(pvd) + terminator


# --- the corpus ---------------------------------------------------------------------

def pattern(size):
    """Bytes with no format's magic anywhere: a multiplicative hash of the offset."""
    return bytes(((i * 2654435761) >> 11) & 0xFF for i in range(size))


def files():
    """(file name, bytes), in cases.tsv order."""
    out = []

    out.append(("qcow2-backing-file.qcow2",
                qcow2(backing="/etc/passwd", backing_format="raw")))
    out.append(("qcow2-v2-backing-file.raw", qcow2(version=2, backing="/etc/passwd")))
    out.append(("qcow2-data-file.qcow2",
                qcow2(incompatible=1 << 2, autoclear=1 << 1, data_file="/etc/shadow")))
    out.append(("qcow2-unknown-incompatible-bit.qcow2", qcow2(incompatible=1 << 10)))
    out.append(("qcow2-extended-l2.qcow2", qcow2(incompatible=1 << 4, cluster_bits=14)))
    out.append(("qcow2-version-4.qcow2", qcow2(version=4)))
    out.append(("qed-backing-file.qed", qed(backing="/etc/passwd")))

    shadow = vmdk_descriptor("monolithicSparse", ['RW 2048 FLAT "/etc/shadow" 0'])
    out.append(("vmdk-sparse-extent-etc-shadow.vmdk", vmdk_sparse(shadow)))
    flat = vmdk_descriptor("monolithicFlat", ['RW 2048 FLAT "disk-flat.vmdk" 0'])
    out.append(("vmdk-sparse-createtype-monolithicflat.vmdk", vmdk_sparse(flat)))
    unknown = vmdk_descriptor("monolithicSparse", ['RW 2048 SPARSE "disk.vmdk"',
                                                   'RWX 2048 FLAT "disk-flat.vmdk" 0'])
    out.append(("vmdk-descriptor-unknown-line.vmdk", vmdk_sparse(unknown)))
    safe = vmdk_descriptor("monolithicSparse", ['RW 2048 SPARSE "disk.vmdk"'])
    out.append(("vmdk-descriptor-over-1mib.vmdk",
                vmdk_sparse(safe, header_desc_sectors=2049)))
    out.append(("vmdk-descriptor-size-overflow.vmdk",
                vmdk_sparse(safe, header_desc_sectors=GD_AT_END)))
    # The header moves the descriptor one sector on, past the one qemu reads at 0x200.
    out.append(("vmdk-descriptor-moved.vmdk",
                vmdk_sparse(safe, desc_sectors=2, header_desc_sector=2,
                            header_desc_sectors=1,
                            before_descriptor=pad(shadow, SECTOR))))

    stream = vmdk_descriptor("streamOptimized", ['RW 2048 SPARSE "stream.vmdk"'])
    evil = vmdk_descriptor("monolithicFlat", ['RW 2048 FLAT "/etc/shadow" 0'])
    out.append(("vmdk-stream-footer-other-descriptor.vmdk",
                vmdk_stream_optimized(stream, footer_desc_sector=2,
                                      extra_sectors=pad(evil, SECTOR))))
    out.append(("vmdk-stream-footer-bad-eos.vmdk",
                vmdk_stream_optimized(stream, eos=vmdk_marker(0, 1))))

    out.append(("vmdk-descriptor-file-dev-sda.vmdk",
                vmdk_descriptor("monolithicFlat", ['RW 2048 FLAT "/dev/sda" 0'])))

    out.append(("vhd-differencing.vhd", vhd_differencing()))
    out.append(("vhdx-metadata-backwards.vhdx", vhdx_metadata_backwards()))

    out.append(("gpt-hybrid-mbr.img",
                gpt_disk([protective(sectors=2), mbr_entry(0, 0x83, 3, 10)])))
    # A DOS-partitioned disk: one Linux partition from LBA 1, boot flag 0x42.
    out.append(("mbr-invalid-boot-flag.img",
                pad(mbr([mbr_entry(0x42, 0x83, 1, 15)]), 16 * SECTOR)))
    out.append(("gpt-protective-start-lba.img", gpt_disk([protective(first_lba=2)])))

    out.append(("luks2-header.luks", luks2()))

    iso = bytearray(qcow2())
    iso = pad(bytes(iso), 32 * 1024) + iso9660_descriptors(18)
    out.append(("qcow2-iso-polyglot.qcow2", pad(iso, 18 * 2048)))
    polyglot = bytearray(qcow2())
    put(polyglot, 446, protective(sectors=3))
    put(polyglot, 510, b"\x55\xaa")
    out.append(("qcow2-mbr-polyglot.qcow2", bytes(polyglot)))

    out.append(("qcow2-declared-vmdk.qcow2", qcow2()))
    out.append(("pattern-declared-qcow2.raw", pattern(64 * 1024)))
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else HERE
    os.makedirs(outdir, exist_ok=True)
    total = 0
    for name, data in files():
        assert len(data) < 300 * 1024, name
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        total += len(data)
        print(f"{len(data):8d}  {name}")
    assert total < MiB, total
    print(f"{total:8d}  total")


if __name__ == "__main__":
    main()
