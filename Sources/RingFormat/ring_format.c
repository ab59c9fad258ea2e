/* SwiftPM needs one source file per C target; the ring format itself is header-only (leakring.h).
 * Compiling the header here also runs its _Static_asserts on every build. */
#include "leakring.h"
