#!/usr/bin/env python3
"""Writes a livetable fuzz seed from the live table of a running process under libleakshim.so.

   livetable.py PID OUT

The seed is the target's list of writes (tools/fuzz/Harness/LiveTableTarget.swift): region byte,
u32 offset, u16 length, bytes, for every non-zero run of the header, the module log, the stack index,
the start of the stack pool and hash segments 0 and 1. Offsets follow leakring.h's layout, read from
the header's own sizes where it has them."""
import os
import struct
import sys

LIVE_LINK = "/memfd:leakshim-live (deleted)"
MAX_STACKS = (1 << 20) // 4 * 3  # LR_MAX_STACKS; the layout it gives is checked against the file size


def find_table(pid):
    for fd in os.listdir(f"/proc/{pid}/fd"):
        path = f"/proc/{pid}/fd/{fd}"
        try:
            if os.readlink(path) == LIVE_LINK:
                return path
        except OSError:
            pass
    sys.exit(f"livetable.py: pid {pid} has no {LIVE_LINK}")


def runs(data, gap=32):
    """(offset, bytes) of each non-zero run, merging runs closer than `gap` zero bytes."""
    out, i, n = [], 0, len(data)
    while i < n:
        if data[i] == 0:
            i += 1
            continue
        j = i
        zeros = 0
        while j < n and zeros < gap:
            zeros = zeros + 1 if data[j] == 0 else 0
            j += 1
        end = j - zeros
        while end - i > 0xFFFF:
            out.append((i, data[i:i + 0xFFFF]))
            i += 0xFFFF
        out.append((i, data[i:end]))
        i = j
    return out


def main():
    pid, out = int(sys.argv[1]), sys.argv[2]
    with open(find_table(pid), "rb") as f:
        header = f.read(4096)
        segments, modlog_used = struct.unpack_from("<I4xQ", header, 64)
        modlog_off, modlog_size = 4096, 1 << 20
        stackidx_off = modlog_off + modlog_size
        stackidx_size = (MAX_STACKS * 4 + 4095) & ~4095
        pool_off = stackidx_off + stackidx_size
        pool_size = 256 << 20
        seg_off = pool_off + pool_size
        file_size = struct.unpack_from("<Q", header, 16)[0]
        if file_size != seg_off + 32 * 4096 * ((1 << 15) - 1):
            sys.exit("livetable.py: the table's size does not match leakring.h's layout as written here")
        f.seek(modlog_off)
        modlog = f.read(min(modlog_used, modlog_size))
        f.seek(stackidx_off)
        stackidx = f.read(1 << 16)
        f.seek(pool_off)
        pool = f.read(1 << 18)
        f.seek(seg_off)
        seg0 = f.read(4096 * 32)
        seg1 = f.read(8192 * 32) if segments > 1 else b""
    seed = bytearray(b"\0")
    for region, data in enumerate([header, modlog, stackidx, pool, seg0, seg1]):
        for offset, chunk in runs(data):
            seed += struct.pack("<BIH", region, offset, len(chunk)) + chunk
    with open(out, "wb") as f:
        f.write(seed)


main()
