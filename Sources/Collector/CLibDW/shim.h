/* elfutils' libdwfl (symbols, DWARF line tables) and libelf for the symbolizer. */
#include <elfutils/libdwfl.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <stddef.h>

/* The C++ ABI demangler from libstdc++, which every Swift program on Linux already loads. */
char *__cxa_demangle(const char *mangled_name, char *output_buffer, size_t *length, int *status);
