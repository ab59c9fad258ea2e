"""Seeds for the sessionedit fuzzer (tools/fuzz/Harness/SessionEditTarget.swift): edit lists of
(table, column, row, kind, value) over the base session, one of each value kind spread over tables
and columns. Usage: edits.py OUTDIR"""
import os
import struct
import sys

out = sys.argv[1]
seeds = {
    "none": b"",
    "null": b"".join(bytes([t, c, 0, 0]) for t in range(12) for c in range(3)),
    "int": b"".join(bytes([t, c, 1, 1]) + struct.pack("<q", -12345) for t in range(12) for c in range(2)),
    "real": b"".join(bytes([t, c, 0, 2]) + struct.pack("<d", 1.5) for t in range(12) for c in range(2)),
    "text": b"".join(bytes([t, c, 0, 3, 3]) + b"abc" for t in range(12) for c in range(4)),
    "blob": b"".join(bytes([t, c, 0, 4, 2, 0xff, 0x01]) for t in range(12) for c in range(4)),
    "extreme": b"".join(bytes([t, c, 0, 5, e]) for t in range(12) for c in range(3) for e in (3, 4)),
    "delete": b"".join(bytes([t, 0, 0, 6]) for t in range(12)),
}
# The first byte picks the base session (0: demo, 1: kernel).
for base, prefix in (("demo", 0), ("kernel", 1)):
    for name, data in seeds.items():
        with open(os.path.join(out, f"{base}-{name}"), "wb") as f:
            f.write(bytes([prefix]) + data)
