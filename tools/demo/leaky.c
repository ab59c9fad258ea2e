/* A small "service" with the leaks people meet on call: a cache that forgets to evict, a 1 MiB
 * buffer lost on an error path, a realloc-grown log never released, and worker threads whose
 * mmap'ed stacks are never unmapped (VSZ creeps up). Everything else is freed correctly, so the
 * report must show exactly these and nothing more. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define REQUESTS 20
#define WORKER_STACK (256 * 1024)

struct entry { char key[32]; struct entry *next; };
static struct entry *cache;

static void cache_put(int id) {
    struct entry *e = malloc(sizeof *e); /* kept forever: the cache never evicts */
    snprintf(e->key, sizeof e->key, "user-%d", id);
    e->next = cache;
    cache = e;
}

static char *read_body(int id) {
    char *buf = malloc(1 << 20); /* 1 MiB per request */
    memset(buf, 'x', 1 << 20);
    if (id % 5 == 0) return NULL; /* error path forgets buf */
    return buf;
}

static int handle(int id) {
    cache_put(id);
    char *body = read_body(id);
    if (!body) return -1;
    free(body);
    return 0;
}

static void *worker(void *arg) { return arg; }

static void spawn_worker(void) {
    /* A caller-provided stack that nobody unmaps after the thread ends. */
    void *stack = mmap(NULL, WORKER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack, WORKER_STACK);
    pthread_t t;
    pthread_create(&t, &attr, worker, NULL);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

int main(void) {
    char *log = NULL;
    size_t len = 0;
    int errors = 0;
    for (int i = 0; i < REQUESTS; i++) {
        errors += handle(i) != 0;
        log = realloc(log, len + 64); /* grows every request, released never */
        len += 64;
        if (i % 4 == 0) spawn_worker();
    }
    printf("handled %d requests, %d errors, log %zu bytes\n", REQUESTS, errors, len);
    return 0;
}
