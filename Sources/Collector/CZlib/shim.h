/* zlib, for the gzip framing pprof files carry on disk. */
#include <zlib.h>
