#!/usr/bin/env bash
# Symbolizer benchmark: 131,072 distinct stacks of 38 frames over the real call sites of two binaries,
# an inline-heavy C++ program built -O2 -g (tools/bench/inlineheavy.py) and leakcollect itself (Swift,
# with DWARF), symbolized in 16 batches as the collector does. Prints one line per binary.
#   tools/bench/symbols.sh [stacks] [depth]
set -euo pipefail
cd "$(dirname "$0")/../.."
stacks=${1:-131072}
depth=${2:-38}
tools/setup.sh
swift build -c release --product symbench >/dev/null
swift build -c release --product leakcollect >/dev/null
mkdir -p .build/bench
[[ -x .build/bench/inlineheavy ]] || {
  python3 tools/bench/inlineheavy.py .build/bench/inlineheavy.cpp
  g++ -O2 -g -o .build/bench/inlineheavy .build/bench/inlineheavy.cpp
}
.build/release/symbench .build/bench/inlineheavy "$stacks" "$depth"
.build/release/symbench .build/release/leakcollect "$stacks" "$depth"
