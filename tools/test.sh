#!/usr/bin/env bash
# Builds everything and runs every test: the README's test command, and what CI runs (.ci/run).
# Installs the system packages first (tools/setup.sh), so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# swift test builds only what the tests link; the shim and both CLIs are run by the tests as
# programs, so build every product first.
swift build
swift test "$@"
# Then each fuzz target for a bounded time from its committed seeds, and the shim under UBSan through
# the pipeline (tools/fuzz.sh, tools/sanitize.sh): a few minutes in all. The fuzz smoke run has a fixed
# seed, so a CI failure repeats; long runs (tools/fuzz.sh alone) draw new mutations.
FUZZ_SEED=${FUZZ_SEED:-1} tools/fuzz.sh "${FUZZ_SECONDS:-20}"
tools/sanitize.sh
