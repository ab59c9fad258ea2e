// libbpf for the kernel side, and the record layouts its BPF programs write (bpf/kernel_events.h).
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "../../../bpf/kernel_events.h"
