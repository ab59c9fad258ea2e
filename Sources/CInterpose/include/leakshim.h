/* libleakshim.so has no API: it is loaded with LD_PRELOAD and replaces the allocator entry points.
 * This header exists because SwiftPM wants a public include directory for a C target. */
