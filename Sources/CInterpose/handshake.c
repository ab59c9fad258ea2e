/* handshake.c: hands a new ring to the collector that follows this process (leakhandshake.h). */
#include <stdlib.h>
#include <unistd.h>

#include "leakhandshake.h"
#include "shim.h"

int ls_handshake_connect(int kind) {
    const char *name = getenv(LR_HS_ENV); /* getenv does not allocate */
    if (!name || !*name) return -1;
    int followed = ls_config.follow_children ||
                   (kind == LR_HS_IMAGE && ls_config.collector_pid != 0 && getppid() == ls_config.collector_pid);
    return followed ? lr_hs_connect(name) : -1;
}

int ls_handshake_send(int sock, int kind) {
    lr_hello h = {LR_HS_MAGIC, LR_HS_VERSION, (uint16_t)kind, (int32_t)getpid(), (int32_t)getppid()};
    int r = lr_hs_send(sock, &h, ls_ring.fd);
    close(sock);
    /* Undelivered: nobody will claim this ring, so nothing may wait for a reader (our copy of the flags
       is what the shim acts on; the header's copy only tells a late attacher how the ring began). */
    if (r != 0) ls_ring.flags &= ~LR_FLAG_EXPECT_COLLECTOR;
    return r;
}
