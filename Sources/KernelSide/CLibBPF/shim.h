// libbpf, and the record layouts the BPF programs write: the kernel side's (bpf/kernel_events.h) and the
// BPF-only mode's uprobes (bpf/uprobe_events.h).
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "../../../bpf/kernel_events.h"
#include "../../../bpf/uprobe_events.h"
