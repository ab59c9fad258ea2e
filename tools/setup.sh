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
  libsqlite3-dev         # session files (GRDB)
  zlib1g-dev
  util-linux             # setpriv/runuser for the privilege tests
  procps
  openjdk-17-jre-headless # the JVM start-up test of the shim (ShimStackBoundsTests)
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(heaptrack bpftrace hyperfine valgrind linux-perf python3 sqlite3)
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
