#!/usr/bin/env bash
# Installs the system packages this project builds and tests against. Idempotent and quick when
# everything is already there; run as root (or with sudo available) on Debian/Ubuntu.
#   tools/setup.sh           build and test dependencies
#   tools/setup.sh --bench   also the tools the benchmark compares against
set -euo pipefail

packages=(
  pkg-config gcc g++ make
  libunwind-dev          # the shim's unwinder
  libdw-dev libelf-dev   # elfutils: symbols and DWARF lines
  libbpf-dev             # kernel side: loading BPF programs (and bpf_helpers.h to build them)
  linux-libc-dev         # <linux/bpf.h> and <asm/types.h> for the BPF programs
  libsqlite3-dev sqlite3 # session files (GRDB); the sqlite3 CLI damages sessions in WrongTypedCellTests
  zlib1g-dev             # also the CRC-32 of .gnu_debuglink files
  libiberty-dev          # GNU libiberty: the Rust demangler (legacy and v0)
  binutils xz-utils dwz  # tests: split, strip, compress and share debug info (objcopy, strip, readelf, xz, dwz)
  util-linux mount       # setpriv/runuser/unshare and mount for the privilege and module-file tests
  procps
  golang-go              # `go tool pprof` reads the pprof files in the report-format tests
  chromium               # headless, renders the flame graph SVG in the report-format tests
  openjdk-17-jre-headless # the JVM start-up test of the shim (ShimStackBoundsTests)
  tmux                   # the live-view tests drive a terminal (send-keys, capture-pane)
  python3                # tools/sanitize.sh reads leakreport JSON; tools/fuzz/seeds/ regenerates the fuzz corpus
)
# The JIT test runs node with a native addon; machines come with node, else Debian's and its headers.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs libnode-dev)
fi
# The Rust naming tests: rustup's toolchain when the machine has one, else Debian's rustc.
if ! command -v rustc >/dev/null 2>&1 && [[ ! -x "${HOME:-/root}/.cargo/bin/rustc" && ! -x /root/.cargo/bin/rustc ]]; then
  packages+=(rustc)
fi
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(heaptrack bpftrace hyperfine valgrind linux-perf python3 sqlite3 time)  # time: GNU /usr/bin/time (wall, peak RSS)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
