/* SwiftPM needs one source file per C target; the ring format itself is header-only (leakring.h,
 * leakhandshake.h). Compiling the headers here also runs their _Static_asserts on every build. */
#include "leakring.h"
#include "leakhandshake.h"
