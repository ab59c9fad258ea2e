/* cfi.c: the unwind rule of one code address, read from its object's .eh_frame through the binary-search
 * table of PT_GNU_EH_FRAME. Runs only when the rule cache (unwind.c) misses, inside dl_iterate_phdr so
 * that the object cannot be unloaded while we read it.
 * Written by hand because no library hands out these rules: libunwind computes them but keeps them
 * private, and libdw would bring elfutils and its allocations into every traced process. It covers what
 * compilers emit for x86-64; anything else is LS_R_FALLBACK, and libunwind unwinds that stack. */
#include <link.h>
#include <string.h>

#include "shim.h"

enum { REG_RBP = 6, REG_RSP = 7, REG_RA = 16 };
enum { RULE_SAME, RULE_UNDEF, RULE_OFFSET, RULE_AT_BP, RULE_OTHER }; /* RULE_AT_BP: saved at rbp + off */
#define MAX_REMEMBER 8

struct reg_rule {
    uint8_t how;
    int64_t off;
};

struct cfa_state {
    uint32_t cfa_reg;
    int64_t cfa_off;
    int cfa_expr; /* 0: reg + off; 1: *(rbp + off); 2: an expression we do not model */
    struct reg_rule bp, ra, sp;
};

struct reader {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t uleb(struct reader *r) {
    uint64_t v = 0;
    for (unsigned shift = 0; r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t sleb(struct reader *r) {
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0x80;
    while (r->p < r->end && (b & 0x80)) {
        b = *r->p++;
        if (shift < 64) v |= (int64_t)(b & 0x7f) << shift;
        shift += 7;
    }
    if (b & 0x80) r->bad = 1;
    else if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
    return v;
}

static uint64_t fixed(struct reader *r, unsigned n) {
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, n); /* little-endian */
    r->p += n;
    return v;
}

/* A DW_EH_PE_* encoded pointer. pc-relative and data-relative (to `data`) forms are resolved. */
static uint64_t encoded(struct reader *r, uint8_t enc, uintptr_t data) {
    uintptr_t here = (uintptr_t)r->p;
    uint64_t v;
    if (enc == 0xff) return 0; /* DW_EH_PE_omit */
    switch (enc & 0x0f) {
    case 0x00: v = fixed(r, 8); break;
    case 0x01: v = uleb(r); break;
    case 0x02: v = fixed(r, 2); break;
    case 0x03: v = fixed(r, 4); break;
    case 0x04: v = fixed(r, 8); break;
    case 0x09: v = (uint64_t)sleb(r); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)fixed(r, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)fixed(r, 4); break;
    case 0x0c: v = fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += here; break; /* pcrel */
    case 0x30: v += data; break; /* datarel */
    default: r->bad = 1; return 0;
    }
    if (enc & 0x80) r->bad = 1; /* indirect: never used for code addresses in .eh_frame_hdr or FDEs */
    return v;
}

struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    int has_aug_data;
    int signal;
    const uint8_t *insns, *end;
};

static int parse_cie(const uint8_t *at, struct cie *c) {
    struct reader r = {at, at + 4, 0};
    uint64_t len = fixed(&r, 4);
    if (len == 0 || len >= 0xfffffff0u) return -1; /* 64-bit .eh_frame: not emitted for x86-64 */
    r.end = r.p + len;
    if (fixed(&r, 4) != 0) return -1; /* a CIE has id 0 in .eh_frame */
    uint8_t version = (uint8_t)fixed(&r, 1);
    if (version != 1 && version != 3) return -1;
    const char *aug = (const char *)r.p;
    size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
    if (aug_len == (size_t)(r.end - r.p)) return -1;
    r.p += aug_len + 1;
    if (strstr(aug, "eh")) return -1; /* pre-3.0 GCC */
    c->code_align = uleb(&r);
    c->data_align = sleb(&r);
    c->ra_reg = version == 1 ? fixed(&r, 1) : uleb(&r);
    c->fde_enc = 0;
    c->has_aug_data = aug[0] == 'z';
    c->signal = 0;
    if (c->has_aug_data) {
        uint64_t n = uleb(&r);
        if (r.bad || n > (uint64_t)(r.end - r.p)) return -1;
        const uint8_t *after = r.p + n;
        for (const char *a = aug + 1; *a && !r.bad; a++) {
            switch (*a) {
            case 'R': c->fde_enc = (uint8_t)fixed(&r, 1); break;
            case 'L': fixed(&r, 1); break;
            case 'P': {
                uint8_t enc = (uint8_t)fixed(&r, 1);
                encoded(&r, enc & 0x7f, 0); /* the personality routine itself does not matter here */
                r.bad = 0;
                break;
            }
            case 'S': c->signal = 1; break;
            default: goto done; /* an unknown letter: the length still says where the data ends */
            }
        }
    done:
        r.p = after;
    }
    if (r.bad) return -1;
    c->insns = r.p;
    c->end = r.end;
    return 0;
}

static void set_reg(struct cfa_state *s, uint64_t reg, uint8_t how, int64_t off) {
    struct reg_rule rr = {how, off};
    if (reg == REG_RBP) s->bp = rr;
    else if (reg == REG_RA) s->ra = rr;
    else if (reg == REG_RSP) s->sp = rr;
}

static struct reg_rule *reg_of(struct cfa_state *s, uint64_t reg) {
    return reg == REG_RBP ? &s->bp : reg == REG_RA ? &s->ra : reg == REG_RSP ? &s->sp : NULL;
}

/* Runs a CFA program until the location passes `target`. Returns 0, or -1 on anything malformed. */
static int run(const uint8_t *p, const uint8_t *end, const struct cie *c, uint64_t *loc, uint64_t target,
               struct cfa_state *s, const struct cfa_state *initial, uintptr_t data) {
    struct cfa_state stack[MAX_REMEMBER];
    int depth = 0;
    struct reader r = {p, end, 0};
    while (r.p < r.end && !r.bad) {
        uint8_t op = *r.p++;
        uint64_t delta = 0, reg;
        int64_t off;
        switch (op >> 6) {
        case 1: delta = (op & 0x3f) * c->code_align; goto advance;
        case 2: set_reg(s, op & 0x3f, RULE_OFFSET, (int64_t)uleb(&r) * c->data_align); continue;
        case 3: {
            struct reg_rule *d = reg_of(s, op & 0x3f), *i = reg_of((struct cfa_state *)initial, op & 0x3f);
            if (d) *d = *i;
            continue;
        }
        }
        switch (op) {
        case 0x00: break;                                          /* nop */
        case 0x01: {                                               /* set_loc */
            uint64_t to = encoded(&r, c->fde_enc, data);
            if (to > target) return 0;
            *loc = to;
            break;
        }
        case 0x02: delta = fixed(&r, 1) * c->code_align; goto advance;
        case 0x03: delta = fixed(&r, 2) * c->code_align; goto advance;
        case 0x04: delta = fixed(&r, 4) * c->code_align; goto advance;
        case 0x05: reg = uleb(&r); set_reg(s, reg, RULE_OFFSET, (int64_t)uleb(&r) * c->data_align); break;
        case 0x06: {                                               /* restore_extended */
            reg = uleb(&r);
            struct reg_rule *d = reg_of(s, reg), *i = reg_of((struct cfa_state *)initial, reg);
            if (d) *d = *i;
            break;
        }
        case 0x07: set_reg(s, uleb(&r), RULE_UNDEF, 0); break;     /* undefined */
        case 0x08: set_reg(s, uleb(&r), RULE_SAME, 0); break;      /* same_value */
        case 0x09: reg = uleb(&r); uleb(&r); set_reg(s, reg, RULE_OTHER, 0); break; /* register */
        case 0x0a:                                                 /* remember_state */
            if (depth == MAX_REMEMBER) return -1;
            stack[depth++] = *s;
            break;
        case 0x0b:                                                 /* restore_state: the CFA too, as GCC's epilogues expect */
            if (depth == 0) return -1;
            *s = stack[--depth];
            break;
        case 0x0c: s->cfa_reg = (uint32_t)uleb(&r); s->cfa_off = (int64_t)uleb(&r); s->cfa_expr = 0; break;
        case 0x0d: s->cfa_reg = (uint32_t)uleb(&r); s->cfa_expr = 0; break;
        case 0x0e: s->cfa_off = (int64_t)uleb(&r); break;
        case 0x0f: {                                               /* def_cfa_expression */
            uint64_t n = uleb(&r);
            if (n > (uint64_t)(r.end - r.p)) return -1;
            struct reader e = {r.p, r.p + n, 0};
            s->cfa_expr = 2;
            if (n >= 2 && *e.p == 0x76) { /* DW_OP_breg6 (rbp) k; DW_OP_deref: a realigned stack's CFA */
                e.p++;
                off = sleb(&e);
                if (!e.bad && e.p + 1 == e.end && *e.p == 0x06) {
                    s->cfa_expr = 1;
                    s->cfa_off = off;
                }
            }
            r.p += n;
            break;
        }
        case 0x10: case 0x16: {                                    /* expression, val_expression */
            reg = uleb(&r);
            uint64_t n = uleb(&r);
            if (n > (uint64_t)(r.end - r.p)) return -1;
            struct reader e = {r.p, r.p + n, 0};
            uint8_t how = RULE_OTHER;
            off = 0;
            if (op == 0x10 && n >= 2 && *e.p == 0x76) { /* DW_OP_breg6 k: saved at rbp + k (a realigned stack) */
                e.p++;
                off = sleb(&e);
                if (!e.bad && e.p == e.end) how = RULE_AT_BP;
            }
            r.p += n;
            set_reg(s, reg, how, off);
            break;
        }
        case 0x11: reg = uleb(&r); set_reg(s, reg, RULE_OFFSET, sleb(&r) * c->data_align); break;
        case 0x12: s->cfa_reg = (uint32_t)uleb(&r); s->cfa_off = sleb(&r) * c->data_align; s->cfa_expr = 0; break;
        case 0x13: s->cfa_off = sleb(&r) * c->data_align; break;
        case 0x14: reg = uleb(&r); uleb(&r); set_reg(s, reg, RULE_OTHER, 0); break; /* val_offset */
        case 0x15: reg = uleb(&r); sleb(&r); set_reg(s, reg, RULE_OTHER, 0); break;
        case 0x2e: uleb(&r); break;                                /* GNU_args_size */
        case 0x2f: reg = uleb(&r); set_reg(s, reg, RULE_OFFSET, -(int64_t)uleb(&r) * c->data_align); break;
        default: return -1;
        }
        continue;
    advance:
        if (*loc + delta > target) return 0;
        *loc += delta;
    }
    return r.bad ? -1 : 0;
}

static void fallback(struct ls_rule *out) { *out = (struct ls_rule){0, 0, LS_R_FALLBACK, 0}; }

/* The rule at `pc` inside the FDE at `fde`; `hdr` is the .eh_frame_hdr start (datarel base). */
static void rule_from_fde(const uint8_t *fde, uintptr_t pc, uintptr_t hdr, struct ls_rule *out) {
    struct reader r = {fde, fde + 8, 0};
    uint64_t len = fixed(&r, 4);
    if (len == 0 || len >= 0xfffffff0u) return fallback(out);
    r.end = fde + 4 + len;
    const uint8_t *cie_ptr_at = r.p;
    uint32_t cie_off = (uint32_t)fixed(&r, 4);
    if (cie_off == 0) return fallback(out); /* that was a CIE */
    struct cie c;
    if (parse_cie(cie_ptr_at - cie_off, &c) != 0) return fallback(out);
    uint64_t start = encoded(&r, c.fde_enc, hdr);
    uint64_t range = encoded(&r, c.fde_enc & 0x0f, 0);
    if (r.bad) return fallback(out);
    if (pc < start || pc - start >= range) {
        *out = (struct ls_rule){0, 0, LS_R_NOINFO, 0}; /* in a gap between FDEs: code without CFI */
        return;
    }
    if (c.has_aug_data) {
        uint64_t n = uleb(&r);
        if (r.bad || n > (uint64_t)(r.end - r.p)) return fallback(out);
        r.p += n;
    }
    if (c.signal) {
        *out = (struct ls_rule){0, 0, LS_R_SIGNAL, 0};
        return;
    }
    struct cfa_state s = {REG_RSP, 8, 0, {RULE_SAME, 0}, {RULE_SAME, 0}, {RULE_SAME, 0}}, initial;
    uint64_t loc = start;
    if (run(c.insns, c.end, &c, &loc, pc, &s, &s, hdr) != 0) return fallback(out);
    initial = s;
    if (run(r.p, r.end, &c, &loc, pc, &s, &initial, hdr) != 0) return fallback(out);

    if (c.ra_reg != REG_RA) return fallback(out);
    if (s.ra.how == RULE_UNDEF) {
        *out = (struct ls_rule){0, 0, LS_R_END, 0};
        return;
    }
    if (s.ra.how != RULE_OFFSET || s.ra.off != -8 || s.sp.how != RULE_SAME) return fallback(out);
    if (s.cfa_off < INT32_MIN || s.cfa_off > INT32_MAX) return fallback(out);
    struct ls_rule rule = {(int32_t)s.cfa_off, 0, 0, 0};
    if (s.cfa_expr == 1) rule.kind = LS_R_BP_DEREF;
    else if (s.cfa_expr == 0 && s.cfa_reg == REG_RSP) rule.kind = LS_R_SP;
    else if (s.cfa_expr == 0 && s.cfa_reg == REG_RBP) rule.kind = LS_R_BP;
    else return fallback(out);
    if (s.bp.how == RULE_OFFSET || s.bp.how == RULE_AT_BP) {
        if (s.bp.off < INT16_MIN || s.bp.off > INT16_MAX) return fallback(out);
        if (s.bp.how == RULE_AT_BP && rule.kind != LS_R_BP_DEREF) return fallback(out);
        rule.flags = LS_RULE_BP_SAVED | (s.bp.how == RULE_AT_BP ? LS_RULE_BP_AT_BP : 0);
        rule.bp_off = (int16_t)s.bp.off;
    } else if (s.bp.how == RULE_OTHER) {
        return fallback(out);
    } /* same or undefined: the caller's rbp is the one we have */
    *out = rule;
}

/* Binary search of .eh_frame_hdr's sorted (initial location, FDE) table, in its usual datarel sdata4 form. */
static void rule_from_hdr(uintptr_t hdr, uintptr_t pc, struct ls_rule *out) {
    const uint8_t *h = (const uint8_t *)hdr;
    if (h[0] != 1 || h[3] != 0x3b) return fallback(out);
    struct reader r = {h + 4, h + 4 + 16, 0};
    encoded(&r, h[1], hdr); /* eh_frame_ptr: not needed with a table */
    uint64_t count = encoded(&r, h[2], hdr);
    if (r.bad || count == 0) return fallback(out);
    const int32_t *table = (const int32_t *)r.p;
    int64_t key = (int64_t)(pc - hdr);
    if (key < table[0]) {
        *out = (struct ls_rule){0, 0, LS_R_NOINFO, 0};
        return;
    }
    uint64_t lo = 0, hi = count; /* the last entry whose start <= key */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (table[2 * mid] <= key) lo = mid;
        else hi = mid;
    }
    rule_from_fde((const uint8_t *)(hdr + (intptr_t)table[2 * lo + 1]), pc, hdr, out);
}

struct find {
    uintptr_t pc;
    struct ls_rule *out;
    int found;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    struct find *f = arg;
    const ElfW(Phdr) *eh = NULL;
    int inside = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && f->pc - lo < ph->p_memsz) inside = 1;
        else if (ph->p_type == PT_GNU_EH_FRAME) eh = ph;
    }
    if (!inside) return 0;
    f->found = 1;
    if (eh) rule_from_hdr(info->dlpi_addr + eh->p_vaddr, f->pc, f->out);
    else fallback(f->out); /* no table: libunwind may still find .debug_frame */
    return 1;
}

void ls_cfi_rule(uintptr_t pc, struct ls_rule *out) {
    struct find f = {pc, out, 0};
    dl_iterate_phdr(find_object, &f);
    if (!f.found) *out = (struct ls_rule){0, 0, LS_R_NOINFO, 0}; /* not in any object: generated code */
}
