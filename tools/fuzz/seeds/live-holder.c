/* Keeps blocks from two stacks live and a dlopened library loaded, then sleeps: a process under
 * libleakshim.so whose live table tools/fuzz/seeds/livetable.py turns into a livetable fuzz seed. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dlfcn.h>
static void *keep[64];
__attribute__((noinline)) void a(int i) { keep[i] = malloc(16 + i); }
__attribute__((noinline)) void b(int i) { keep[i] = calloc(1, 100 + i); }
int main(void) {
    for (int i = 0; i < 32; i++) a(i);
    for (int i = 32; i < 64; i++) b(i);
    free(keep[3]);
    void *h = dlopen("libm.so.6", RTLD_NOW);
    (void)h;
    printf("ready\n");
    fflush(stdout);
    sleep(30);
    return 0;
}
