/* Writes one seed file per kernel ring-buffer record type (bpf/kernel_events.h, the one definition of
 * the layouts), in the kernel fuzz target's framing: a little-endian u16 length, then the record.
 * Values are those a real run produces (a kmalloc with an inline stack, an OOM kill in a memcg, ...). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <linux/types.h>
#include "seedfile.h"
#include "../../../bpf/kernel_events.h"

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *dir = argv[1];
    struct ke_header h = {.time_ns = 123456789000ull, .tgid = 4242, .tid = 4243};

    struct ke_alloc_inline ai;
    memset(&ai, 0, sizeof ai);
    ai.a.h = h;
    ai.a.h.type = KE_ALLOC;
    ai.a.address = 0xffff888012345600ull;
    ai.a.size = 256;
    ai.a.stack_id = 17;
    ai.a.kind = KE_KIND_SLAB;
    ai.a.function = KE_FN_KMALLOC;
    strcpy(ai.a.comm, "leaky");
    struct ke_free fr = {.h = h, .address = ai.a.address, .kind = KE_KIND_SLAB};
    fr.h.type = KE_FREE;
    FILE *f = open_seed(dir, "alloc-free");
    put(f, &ai.a, sizeof ai.a);
    put(f, &fr, sizeof fr);
    fclose(f);

    ai.a.stack_id = -1;
    ai.a.nr_frames = 4;
    ai.a.kind = KE_KIND_PAGE;
    ai.a.function = KE_FN_PAGE_ALLOC;
    for (int i = 0; i < 4; i++) ai.frames[i] = 0xffffffff81000000ull + 0x1234 * (i + 1);
    f = open_seed(dir, "alloc-inline-stack");
    put(f, &ai, sizeof ai.a + 4 * sizeof ai.frames[0]);
    fclose(f);

    struct ke_oom o;
    memset(&o, 0, sizeof o);
    o.h = h;
    o.h.type = KE_OOM_VICTIM;
    o.victim_tgid = 5000;
    o.victim_tid = 5000;
    o.uid = 1000;
    o.oom_score_adj = 0;
    o.total_vm_pages = 300000;
    o.anon_rss_pages = 250000;
    o.file_rss_pages = 1000;
    o.pgtables_bytes = 600000;
    o.memcg_max_pages = 262144;
    o.memcg_usage_pages = 262100;
    o.flags = KE_OOM_HAS_TASK | KE_OOM_HAS_MEMCG;
    o.memcg_depth = 3;
    strcpy(o.victim_comm, "hog");
    strcpy(o.trigger_comm, "hog");
    strcpy(o.memcg[0], "leaktest");
    strcpy(o.memcg[1], "system.slice");
    o.memcg[2][0] = 0;
    struct ke_reaper r = {.h = h, .pid = 5000, .step = KE_REAPER_FINISH};
    r.h.type = KE_OOM_REAPER;
    f = open_seed(dir, "oom-kill");
    put(f, &o, sizeof o);
    put(f, &r, sizeof r);
    fclose(f);

    struct ke_reclaim rc;
    memset(&rc, 0, sizeof rc);
    rc.h = h;
    rc.h.type = KE_RECLAIM;
    rc.duration_ns = 1500000;
    rc.reclaimed_pages = 32;
    rc.kind = KE_RECLAIM_MEMCG;
    strcpy(rc.comm, "hog");
    struct ke_kswapd k = {.h = h, .nid = 0, .wake = 1};
    k.h.type = KE_KSWAPD;
    struct ke_shrink s;
    memset(&s, 0, sizeof s);
    s.h = h;
    s.h.type = KE_SHRINK;
    s.scan_objects = 0xffffffff81234560ull;
    s.duration_ns = 20000;
    s.freed = 128;
    strcpy(s.name, "super_cache_scan");
    f = open_seed(dir, "reclaim-kswapd-shrink");
    put(f, &rc, sizeof rc);
    put(f, &k, sizeof k);
    put(f, &s, sizeof s);
    fclose(f);
    return 0;
}
