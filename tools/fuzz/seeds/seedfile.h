/* The framing the BPF ring-buffer fuzz targets read (tools/fuzz/Harness/FramedRecords.swift), for the
 * seed writers kernel-records.c and uprobe-records.c: a little-endian u16 length, then the record. */
#ifndef LEAKFUZZ_SEEDFILE_H
#define LEAKFUZZ_SEEDFILE_H
#include <stdint.h>
#include <stdio.h>

static void put(FILE *f, const void *rec, uint16_t size) {
    fputc(size & 0xff, f);
    fputc(size >> 8, f);
    fwrite(rec, 1, size, f);
}

static FILE *open_seed(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) perror(path);
    return f;
}
#endif
