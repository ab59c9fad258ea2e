// glibc's <malloc.h> (mallopt), which Swift's Glibc module does not import.
#include <malloc.h>
