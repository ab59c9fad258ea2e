#!/usr/bin/env bash
# Builds the toolkit and the bundled leaky demo, runs the demo under leakcollect, prints the report:
# the README's demo command.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
swift build
mkdir -p .build/demo
gcc -g -O0 -fno-omit-frame-pointer -pthread -o .build/demo/leaky tools/demo/leaky.c
echo "== leakcollect --quiet -o .build/demo/leaky.leaks -- .build/demo/leaky"
.build/debug/leakcollect --quiet -o .build/demo/leaky.leaks -- .build/demo/leaky
echo
echo "== leakreport top .build/demo/leaky.leaks"
.build/debug/leakreport top .build/demo/leaky.leaks
