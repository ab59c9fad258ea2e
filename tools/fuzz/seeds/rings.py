"""Seeds for the ring fuzzer from rings dumped by ring-dump.c: each ring trimmed after its last
record, the same records wrapped around the end of the data region and around the 2^48 position
space, and one in attach mode. Usage: rings.py OUTDIR DUMP..."""
import os
import struct
import sys

HEADER = 4096
POS_MASK = (1 << 48) - 1


def seed(out, name, header, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes(header) + bytes(data))


def main():
    out, dumps = sys.argv[1], sys.argv[2:]
    for i, path in enumerate(dumps):
        ring = open(path, "rb").read()
        header = bytearray(ring[:HEADER])
        (data_size,) = struct.unpack_from("<Q", header, 16)
        (cursor,) = struct.unpack_from("<Q", header, 64)
        gen, written = cursor >> 48, cursor & POS_MASK
        data = ring[HEADER:HEADER + data_size]
        records = data[:written]
        seed(out, f"ring{i}-trimmed", header, records)

        def wrapped(start):
            h = bytearray(header)
            buf = bytearray(data_size)
            for j, b in enumerate(records):
                buf[(start + j) % data_size] = b
            struct.pack_into("<Q", h, 128, start & POS_MASK)
            struct.pack_into("<Q", h, 64, gen << 48 | (start + written) & POS_MASK)
            return h, buf

        half = (written // 2) & ~7
        seed(out, f"ring{i}-wrap-data", *wrapped(data_size - half))
        seed(out, f"ring{i}-wrap-position", *wrapped((1 << 48) - half))
        attach = bytearray(header)
        struct.pack_into("<I", attach, 52, 1)
        seed(out, f"ring{i}-attach", attach, records)


main()
