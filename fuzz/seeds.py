#!/usr/bin/env python3
"""Writes the committed seed corpus, fuzz/corpus/<target>/seed-*, in each target's input format.

The formats are documented at the top of each fuzz_targets/<target>.rs. Run it from anywhere
after changing a format; it rewrites every seed-* file and removes seeds it no longer makes.
"""

import pathlib
import struct

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"
U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1

# Layout indices in pktmap_abi::codec::LAYOUTS.
PKTMAP, ONLOAD, IO_URING, AF_XDP, VFIO = range(5)


def u64s(*values):
    return b"".join(struct.pack("<Q", v) for v in values)


# decode_any: little-endian u64 offsets, one per seed here.
DECODE_ANY = {
    "zero": 0,
    "pktmap-pool-7": 7 << 15 | 1 << 12,
    "pktmap-ring-max-id": 0xFFFF_FFFF << 15 | 2 << 12,
    "pktmap-type-3": 3 << 12,
    "pktmap-type-7": 7 << 12,
    "pktmap-bit-47": 1 << 47,
    "onload-dshm-5": 5 << 15 | 2 << 12,
    "onload-ubuf-post-top-id": U64_MAX & ~0x7FFF | 3 << 12,
    "io-uring-cq-ring": 0x0800_0000,
    "io-uring-sqes": 0x1000_0000,
    "io-uring-pbuf-2047": 0x8000_0000 | 2047 << 16,
    "io-uring-sq-with-bgid": 0x1_0000,
    "io-uring-type-3": 0x1800_0000,
    "af-xdp-tx": 0x8000_0000,
    "af-xdp-fill": 0x1_0000_0000,
    "af-xdp-completion": 0x1_8000_0000,
    "af-xdp-above": 0x2_0000_0000,
    "vfio-bar2-1m": 2 << 40 | 0x10_0000,
    "vfio-last-page": U64_MAX - 4095,
    "u64-max": U64_MAX,
    "bit-63": 1 << 63,
    "misaligned-0x1001": 0x1001,
    "misaligned-0x800": 0x800,
    "pgoff-limit": U64_MAX >> 12,
    "pgoff-overflow": 1 << 52,
}


def encode_decode(layout, map_type, map_id):
    return struct.pack("<BIQ", layout, map_type, map_id)


ENCODE_DECODE = {
    "pktmap-state-0": (PKTMAP, 0, 0),
    "pktmap-pool-7": (PKTMAP, 1, 7),
    "pktmap-ring-max-id": (PKTMAP, 2, U32_MAX),
    "pktmap-id-2-32": (PKTMAP, 1, 1 << 32),
    "pktmap-type-3": (PKTMAP, 3, 0),
    "pktmap-type-8": (PKTMAP, 8, 0),
    "onload-ubuf-post-top-id": (ONLOAD, 3, (1 << 49) - 1),
    "onload-id-2-49": (ONLOAD, 0, 1 << 49),
    "onload-type-4": (ONLOAD, 4, 0),
    "io-uring-sq-ring": (IO_URING, 0, 0),
    "io-uring-sq-with-id": (IO_URING, 0, 1),
    "io-uring-pbuf-2047": (IO_URING, 0x10, 2047),
    "io-uring-pbuf-2048": (IO_URING, 0x10, 2048),
    "io-uring-type-31": (IO_URING, 31, 0),
    "io-uring-type-32": (IO_URING, 32, 0),
    "af-xdp-completion": (AF_XDP, 3, 0),
    "af-xdp-rx-with-id": (AF_XDP, 0, 1),
    "af-xdp-type-4": (AF_XDP, 4, 0),
    "vfio-last-page": (VFIO, (1 << 24) - 1, (1 << 40) - 4096),
    "vfio-misaligned": (VFIO, 5, 0x800),
    "vfio-id-2-40": (VFIO, 5, 1 << 40),
    "vfio-type-2-24": (VFIO, 1 << 24, 0),
    "all-max": (4, U32_MAX, U64_MAX),
}

# plan_request: see fuzz_targets/plan_request.rs for the format.
RAW, TYPED, PICK, PICK_XOR = 0, 1, 2, 3
STATE, POOL, RING = 0, 1, 2


def mode(source, write=False, map_type=0):
    return source << 1 | int(write) | map_type << 4


def entry(map_type, kind, map_id, pages):
    return struct.pack("<BIQ", map_type | kind << 2, map_id, pages)


# The table of plan.rs's unit tests: STATE 0, pool 1, pool 2, ring 1, and a ring id
# that the table wrongly files as the STATE page.
TABLE = [
    entry(STATE, STATE, 0, 1),
    entry(POOL, POOL, 1, 16),
    entry(POOL, POOL, 2, 16),
    entry(RING, RING, 1, 2),
    entry(RING, STATE, 9, 1),
]


SHARED, EXEC = 1, 2


def plan(mmap_mode, value, length, pool=(2048, 3, 1), ring=(1024, 1, 0, 1), table=TABLE, more=SHARED):
    out = struct.pack("<BQQ", mmap_mode, value, length)
    out += struct.pack("<III", *pool)
    out += struct.pack("<IIIB", *ring)
    out += struct.pack("<B", len(table)) + b"".join(table)
    out += struct.pack("<B", more)
    return out


PLAN_REQUEST = {
    "state-read": plan(mode(TYPED, map_type=STATE), 0, 4096),
    "state-write": plan(mode(TYPED, write=True, map_type=STATE), 0, 4096),
    "state-two-pages": plan(mode(TYPED, map_type=STATE), 0, 8192),
    "pool-full": plan(mode(PICK, write=True), 1, 16 * 4096),
    "pool-one-page-over": plan(mode(PICK), 1, 16 * 4096 + 1),
    "pool-lazy": plan(mode(PICK, write=True), 2, 4096),
    "pool-zero-len": plan(mode(PICK), 1, 0),
    "ring-len-max": plan(mode(PICK), 3, U64_MAX),
    "ring-filed-as-state": plan(mode(PICK), 4, 4096),
    "unknown-id": plan(mode(PICK_XOR), 8 << 32 | 5, 4096),  # pool 1, id xor 1
    "unknown-type": plan(mode(TYPED, map_type=3), 0, 4096),
    "pgoff-max": plan(mode(RAW), U64_MAX, 4096),
    "pgoff-2-52": plan(mode(RAW), 1 << 52, 4096),
    "pgoff-bit-35": plan(mode(RAW), 1 << 35, 4096),
    "pool-256mib": plan(0, 0, 0, pool=(65536, 4096, 0)),
    "pool-over-256mib": plan(0, 0, 0, pool=(65536, 4097, 0)),
    "pool-smallest": plan(0, 0, 0, pool=(256, 1, 0)),
    "pool-bad-size": plan(0, 0, 0, pool=(3000, 1, 0)),
    "pool-size-2-17": plan(0, 0, 0, pool=(1 << 17, 1, 0)),
    "pool-count-max": plan(0, 0, 0, pool=(65536, U32_MAX, 0)),
    "pool-bad-flags": plan(0, 0, 0, pool=(2048, 1, 2)),
    "ring-max-entries": plan(0, 0, 0, ring=(32768, 1, 0, 1)),
    "ring-too-many": plan(0, 0, 0, ring=(65536, 1, 0, 1)),
    "ring-not-pow2": plan(0, 0, 0, ring=(504, 1, 0, 1)),
    "ring-flags": plan(0, 0, 0, ring=(8, 1, 2, 1)),
    "ring-packet": plan(0, 0, 0, ring=(512, 1, 1, 1)),
    "ring-packet-max-entries": plan(0, 0, 0, ring=(32768, 1, 1, 1)),
    "ring-no-pool": plan(0, 0, 0, ring=(8, 7, 0, 0)),
    "empty-table": plan(mode(TYPED, map_type=POOL), 1, 4096, table=[]),
    "pool-shared-read-only": plan(mode(PICK), 1, 4096),
    "pool-private-read-only": plan(mode(PICK), 1, 4096, more=0),
    "pool-exec": plan(mode(PICK), 1, 4096, more=SHARED | EXEC),
    "state-private-exec": plan(mode(TYPED, map_type=STATE), 0, 4096, more=EXEC),
}


# plan_io: see fuzz_targets/plan_io.rs for the format.
def io(io_mode, value, length, table=TABLE):
    out = struct.pack("<BQQ", io_mode, value, length)
    out += struct.pack("<B", len(table)) + b"".join(table)
    return out


IO_RAW, IO_ENTRY, IO_PAGES, IO_BYTES = 0, 1, 2, 3
PLAN_IO = {
    "state-read": io(IO_ENTRY << 1, 0, 72),
    "state-write": io(IO_ENTRY << 1 | 1, 0, 8),
    "pool-write-long": io(IO_ENTRY << 1 | 1, 1, 1 << 30),
    "pool-read-zero": io(IO_ENTRY << 1, 1, 0),
    "pool-next-page": io(IO_PAGES << 1, 1 | 1 << 8, 4096),
    "pool-plus-8": io(IO_BYTES << 1, 1 | 8 << 8, 4096),
    "ring-read": io(IO_ENTRY << 1, 3, 4096),
    "negative": io(IO_RAW, U64_MAX & ~0xFFF, 8),
    "raw-bit-47": io(IO_RAW, 1 << 47, 8),
    "empty-table": io(IO_ENTRY << 1, 0, 8, table=[]),
}


# admission: see fuzz_targets/admission.rs for the format.
def admission(pick, writable, raw, held, budget, requests):
    out = struct.pack("<BIQQ", pick << 1 | int(writable), raw, held, budget)
    out += struct.pack("<B", len(requests)) + u64s(*requests)
    return out


ADMISSION = {
    "create-read-only": admission(0, False, 0, 0, 100, [10, 90, 1]),
    "info-read-only": admission(1, False, 0, 0, 0, [0, 1]),
    "destroy-writable": admission(2, True, 0, 50, 50, [0]),
    "unknown-raw": admission(8, True, 0xC010_5009, 0, 1, [1]),
    "round1-pool-create-raw": admission(8, True, 0xC010_5001, 0, 1, [1]),
    "pool-info-20-bytes-raw": admission(8, False, 0xC014_5002, 0, 1, [1]),
    "chunk-read-only": admission(6, False, 0, 0, 1, [1]),
    "export-read-only": admission(7, False, 0, 0, 1, [1]),
    "near-overflow": admission(3, True, 0, U64_MAX - 1, U64_MAX, [1, 1, 1 << 63]),
    # ATTACH (pick 0 + 8, bit 5) on a read-only open; KICK (2 + 8) on a writable one.
    "attach-read-only": admission(16, False, 0, 0, 1, [1]),
    "kick-writable": admission(16 | 2, True, 0, 0, 1, [1]),
}


def write(target, seeds):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (folder / f"seed-{name}").write_bytes(data)
    print(f"{target}: {len(seeds)} seeds")


write("decode_any", {name: u64s(v) for name, v in DECODE_ANY.items()})
write("encode_decode", {name: encode_decode(*v) for name, v in ENCODE_DECODE.items()})
write("plan_request", PLAN_REQUEST)
write("plan_io", PLAN_IO)
write("admission", ADMISSION)

MIB = 1 << 20


def pool_req(pool=(4096, 512, 4, 0, 0, 0), bits=0b1011, window=(21, 0, 64, 64, 16),
             huge=(64 * MIB + 3 * MIB, 768, 64 * MIB, 72 * MIB), chunk=1, export=(1, 0)):
    out = struct.pack("<IIIIIQ", *pool)
    out += struct.pack("<B", bits)
    out += struct.pack("<QQQQI", *window)
    out += struct.pack("<QQQQ", *huge)
    out += struct.pack("<I", chunk)
    out += struct.pack("<II", *export)
    return out


POOL_REQUEST = {
    "huge-2mib-aligned": pool_req(),
    "huge-wc-private": pool_req(pool=(4096, 1024, 4, 0, 1, 0), bits=0b1000),
    "huge-fixed-unaligned": pool_req(huge=(64 * MIB + 3 * MIB, 767, 64 * MIB - 4096, 72 * MIB)),
    "contig-3-pages": pool_req(pool=(4096, 3, 2, 0, 0, 0), chunk=0),
    "contig-6mib-wc": pool_req(pool=(2048, 3072, 2, 0, 1, 0), chunk=2),
    "contig-chunk-past-end": pool_req(pool=(4096, 1024, 2, 0, 0, 0), chunk=2),
    "contig-unprivileged": pool_req(pool=(4096, 1024, 2, 0, 0, 0), bits=0b0011),
    "lazy-around-1": pool_req(pool=(2048, 64, 1, 1, 0, 0), window=(5, 0, 32, 32, 1)),
    "lazy-around-512": pool_req(pool=(2048, 64, 1, 512, 0, 0), window=(600, 513, 1024, 700, 512)),
    "lazy-around-3": pool_req(pool=(2048, 64, 1, 3, 0, 0), window=(5, 0, 32, 32, 3)),
    "lazy-wc": pool_req(pool=(2048, 64, 1, 0, 1, 0)),
    "eager-around": pool_req(pool=(2048, 64, 0, 16, 0, 0)),
    "two-kinds": pool_req(pool=(2048, 64, 3, 0, 0, 0)),
    "reserved-set": pool_req(pool=(2048, 64, 0, 0, 0, 1)),
    "readonly-write": pool_req(pool=(2048, 64, 0, 0, 0, 0), bits=0b0111),
    "readonly-private": pool_req(pool=(2048, 64, 0, 0, 0, 0), bits=0b0100),
    "export-bad-flags": pool_req(export=(2, 0)),
    "export-reserved": pool_req(export=(0, 7)),
    "window-top": pool_req(window=(U64_MAX - 1, 0, U64_MAX, U64_MAX, 512)),
    "huge-top": pool_req(huge=(U64_MAX & ~4095, 0, 0, U64_MAX)),
}
write("pool_request", POOL_REQUEST)


# ioctl_size: see fuzz_targets/ioctl_size.rs for the format.
def ioctl_size(mode, raw=0, size=0, rest=b""):
    return struct.pack("<BIH", mode, raw, size) + rest


IOCTL_SIZE = {
    # POOL_CREATE at the first round's 16 bytes (request 0, size kind 0, size index 0).
    "round1-pool-create": ioctl_size(0 | 0 << 4 | 0 << 6, rest=struct.pack("<IIII", 2048, 8, 1, 0)),
    # POOL_INFO at today's 48 bytes, then one byte short (never a size: ENOTTY).
    "pool-info-today": ioctl_size(1 | 0 << 4 | 1 << 6),
    "pool-info-one-short": ioctl_size(1 | 1 << 4 | 1 << 6),
    # POOL_CREATE from a newer header, 8 bytes longer: zero tail, then a set byte in it.
    "pool-create-longer-zero": ioctl_size(0 | 2 << 4 | 1 << 6, rest=bytes(40)),
    "pool-create-longer-set": ioctl_size(0 | 2 << 4 | 1 << 6, rest=bytes(36) + b"\x01"),
    # RING_DESTROY (_IOW) at a 4 KiB struct; a raw number of the wrong direction.
    "ring-destroy-4k": ioctl_size(5 | 3 << 4, size=4096),
    "pool-create-iow-raw": ioctl_size(8, raw=0x4020_5001),
    # ATTACH (request 0 + 8) at today's 32 bytes; KICK (2 + 8) at 5 bytes, a newer header's.
    "attach-today": ioctl_size(0, raw=1),
    "kick-longer-set": ioctl_size(2 | 3 << 4, raw=1, size=5, rest=bytes(4) + b"\x01"),
}
write("ioctl_size", IOCTL_SIZE)


# packet: see fuzz_targets/packet.rs for the format.
def packet(attach=(2, 1, 1, 2, 0, 0, 0), table=0b111, logs=(8, 8, 8, 11), count=1024, chunk=0,
           idx=(0, 0, 256), desc=(0, 60, 0, 0, 0), max_len=1514, bits=0, tci=0):
    out = struct.pack("<IIIIIIQ", *attach) + struct.pack("<B", table)
    out += bytes(logs) + struct.pack("<IB", count, chunk) + struct.pack("<III", *idx)
    return out + struct.pack("<IIIHH", *desc) + struct.pack("<IBH", max_len, bits, tci)


PACKET = {
    "rx-tx-ok": packet(),
    "mirror-rx-only": packet(attach=(2, 1, 1, 0, 1, 0, 0)),
    "bad-flags": packet(attach=(2, 1, 1, 0, 2, 0, 0)),
    "reserved": packet(attach=(2, 1, 1, 0, 0, 0, 1)),
    "no-ifindex": packet(attach=(0, 1, 1, 0, 0, 0, 0)),
    "same-ring": packet(attach=(2, 1, 2, 2, 0, 0, 0)),
    "unknown-ring": packet(table=0b001),
    "not-packet": packet(table=0b1111),
    "ring-attached": packet(table=0b10111),
    "other-pool": packet(attach=(2, 1, 3, 0, 0, 0, 0), table=0b100111),
    "write-combined": packet(table=0b1000111),
    "no-pool": packet(table=0b10000111),
    "straddles": packet(logs=(8, 8, 8, 13)),
    "straddles-contig-ok": packet(logs=(8, 8, 8, 13), chunk=2),
    "pool-too-small": packet(count=511),
    "consumer-ahead": packet(idx=(5, 9, 8)),
    "full-wrapped": packet(idx=(3, 0xFFFF_FFFB, 8)),
    "tx-buf-past-pool": packet(desc=(1024, 60, 0, 0, 0)),
    "tx-too-long": packet(desc=(3, 1515, 0, 0, 0)),
    "tx-flags": packet(desc=(3, 60, 0, 2, 0)),
    "rx-truncated-vlan-gso": packet(desc=(7, 65000, 0, 0, 0), bits=0b1011, tci=100),
}
write("packet", PACKET)
