/* elfutils' libdwfl (symbols, DWARF lines and inline scopes) and libelf for the symbolizer. */
#include <elfutils/libdwfl.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <dwarf.h>
#include <gelf.h>
#include <stddef.h>
#include <stdint.h>

/* The C++ ABI demangler from libstdc++, which every Swift program on Linux already loads. */
char *__cxa_demangle(const char *mangled_name, char *output_buffer, size_t *length, int *status);

/* The Swift runtime's own demangler (libswiftCore, linked into the collector). flags must be 0. */
char *swift_demangle(const char *mangled_name, size_t mangled_name_length, char *output_buffer, size_t *output_buffer_size,
                     uint32_t flags);

/* GNU libiberty's Rust demangler (legacy and v0 manglings; Debian's libiberty-dev, static). Declared
 * here rather than through <libiberty/demangle.h>, whose libiberty.h redeclares libc functions. */
char *rust_demangle(const char *mangled, int options);
