/* modules.c: the table of loaded ELF objects (path, bias, PT_LOAD range, GNU build-id), their MODULE and
 * UNMODULE records, and the rescans after dlopen (noticed lazily) and dlclose (wrapped). */
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#define MAX_MODULES 4096u
#define PATH_POOL (4u << 20)

struct module {
    uint64_t lo, hi, bias;
    uint32_t id;
    uint32_t sent_gen; /* ring generation + 1 it was last sent in */
    uint32_t path_off;
    uint16_t path_len;
    uint8_t build_id_len;
    uint8_t live, seen, gone;
    uint8_t build_id[LR_MAX_BUILD_ID];
};

uint32_t ls_modgen;
static struct module *mods;
static uint32_t nmods;
static char *paths;
static uint32_t paths_used;
static int lock;
static uint32_t all_sent_gen; /* gen + 1 once every live module went out in gen; 0 after a change */
static unsigned long long seen_adds, seen_subs;
static uintptr_t vdso;
static char exe[LR_MAX_PATH];
static uint16_t exe_len;

void ls_modules_lock(void) { ls_spin_lock(&lock); }
void ls_modules_unlock(void) { ls_spin_unlock(&lock); }

static void read_build_id(struct module *m, const struct dl_phdr_info *info) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        size_t align = ph->p_align == 8 ? 8 : 4;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name_sz = (nh->n_namesz + align - 1) & ~(align - 1);
            size_t desc_sz = (nh->n_descsz + align - 1) & ~(align - 1);
            if (name_sz + desc_sz > (size_t)(end - p) - sizeof(*nh)) break;
            const unsigned char *name = p + sizeof(*nh), *desc = name + name_sz;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                m->build_id_len = nh->n_descsz > LR_MAX_BUILD_ID ? LR_MAX_BUILD_ID : (uint8_t)nh->n_descsz;
                memcpy(m->build_id, desc, m->build_id_len);
                return;
            }
            p = desc + desc_sz;
        }
    }
}

static int scan_one(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    int *first = arg, is_main = *first;
    *first = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    if (hi == 0 || (vdso && vdso - lo < hi - lo)) return 0; /* no segments, or the vdso: no file to symbolize */
    const char *name = info->dlpi_name;
    size_t len = name ? strlen(name) : 0;
    if (len == 0) {
        if (!is_main || exe_len == 0) return 0;
        name = exe;
        len = exe_len;
    }
    if (len > LR_MAX_PATH) len = LR_MAX_PATH;
    for (uint32_t i = 0; i < nmods; i++) {
        struct module *m = &mods[i];
        if (m->live && m->lo == lo && m->bias == info->dlpi_addr && m->path_len == len &&
            memcmp(paths + m->path_off, name, len) == 0) {
            m->seen = 1;
            return 0;
        }
    }
    if (nmods >= MAX_MODULES || paths_used + len > PATH_POOL) return 0;
    struct module *m = &mods[nmods];
    memset(m, 0, sizeof *m);
    m->lo = lo;
    m->hi = hi;
    m->bias = info->dlpi_addr;
    m->id = nmods + 1;
    m->path_off = paths_used;
    m->path_len = (uint16_t)len;
    memcpy(paths + paths_used, name, len);
    paths_used += (uint32_t)len;
    read_build_id(m, info);
    m->live = m->seen = 1;
    nmods++;
    ls_live_log_module(m->id, paths + m->path_off, m->path_len, m->build_id, m->build_id_len, m->bias, m->lo, m->hi);
    __atomic_store_n(&all_sent_gen, 0, __ATOMIC_RELEASE);
    return 0;
}

static int loader_counts(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    unsigned long long *c = arg;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1; /* the counters are global: one object is enough */
}

/* Under the lock. Marks what disappeared as gone (its UNMODULE is still to be sent). */
static void scan(void) {
    unsigned long long c[2] = {0, 0};
    dl_iterate_phdr(loader_counts, c);
    seen_adds = c[0];
    seen_subs = c[1];
    for (uint32_t i = 0; i < nmods; i++) mods[i].seen = 0;
    int first = 1;
    dl_iterate_phdr(scan_one, &first);
    for (uint32_t i = 0; i < nmods; i++) {
        if (mods[i].live && !mods[i].seen) {
            mods[i].live = 0;
            mods[i].gone = 1;
            ls_live_log_unmodule(mods[i].id);
        }
    }
}

int ls_modules_init(void) {
    mods = ls_sys_mmap(NULL, MAX_MODULES * sizeof(struct module), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    paths = ls_sys_mmap(NULL, PATH_POOL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mods == MAP_FAILED || paths == MAP_FAILED) return -1;
    vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
    exe_len = n > 0 && (size_t)n < sizeof exe ? (uint16_t)n : 0;
    ls_modules_lock();
    scan();
    ls_modules_unlock();
    return 0;
}

void ls_modules_refresh(void) {
    unsigned long long c[2] = {0, 0};
    dl_iterate_phdr(loader_counts, c); /* takes only the loader's lock, and only for a moment */
    ls_modules_lock();
    if (c[0] != seen_adds || c[1] != seen_subs) scan();
    ls_modules_unlock();
}

int ls_modules_send(uint32_t gen) {
    if (__atomic_load_n(&all_sent_gen, __ATOMIC_ACQUIRE) == gen + 1) return LS_OK;
    ls_modules_lock();
    int r = LS_OK;
    for (uint32_t i = 0; i < nmods && r == LS_OK; i++) {
        struct module *m = &mods[i];
        if (!m->live || m->sent_gen == gen + 1) continue;
        uint32_t len = lr_round8((uint32_t)sizeof(lr_module) + m->path_len);
        unsigned char *rec;
        uint64_t end;
        r = ls_ring_reserve(gen, len, &rec, &end);
        if (r != LS_OK) break;
        lr_module *rm = (lr_module *)rec;
        ls_rec_header(rec, LR_T_MODULE, LR_FN_NONE, 0);
        rm->module_id = m->id;
        rm->path_len = m->path_len;
        rm->build_id_len = m->build_id_len;
        rm->reserved = 0;
        rm->bias = m->bias;
        rm->lo = m->lo;
        rm->hi = m->hi;
        memcpy(rm->build_id, m->build_id, sizeof rm->build_id);
        memcpy(rm->path, paths + m->path_off, m->path_len);
        memset(rm->path + m->path_len, 0, len - sizeof(lr_module) - m->path_len);
        ls_commit(rec, len);
        ls_after_commit(end);
        m->sent_gen = gen + 1;
    }
    /* release: a writer that sees this also sees positions after every module record reserved above */
    if (r == LS_OK) __atomic_store_n(&all_sent_gen, gen + 1, __ATOMIC_RELEASE);
    ls_modules_unlock();
    return r;
}

void ls_modules_after_dlclose(void) {
    ls_modules_lock();
    scan();
    for (uint32_t i = 0; i < nmods; i++) {
        struct module *m = &mods[i];
        if (!m->gone) continue;
        m->gone = 0;
        for (;;) {
            uint32_t gen = ls_ring_gen();
            if (m->sent_gen != gen + 1) break; /* the reader of this generation never heard of it */
            unsigned char *rec;
            uint64_t end;
            int r = ls_ring_reserve(gen, sizeof(lr_unmodule), &rec, &end);
            if (r == LS_RETRY) continue;
            if (r == LS_DROP) {
                ls_ring_lost(1, 0);
                break;
            }
            ls_rec_header(rec, LR_T_UNMODULE, LR_FN_NONE, 0);
            ((lr_unmodule *)rec)->module_id = m->id;
            ((lr_unmodule *)rec)->reserved = 0;
            ls_commit(rec, sizeof(lr_unmodule));
            ls_after_commit(end);
            break;
        }
    }
    __atomic_fetch_add(&ls_modgen, 1, __ATOMIC_RELEASE); /* fresh stack ids and unwind rules from now on */
    ls_unwind_flush();
    ls_modules_unlock();
}
