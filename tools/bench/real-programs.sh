#!/usr/bin/env bash
# Real programs that nobody here wrote (perl, node, the JVM): wall time uninstrumented and under
# leakcollect, to the moment the command returns, alternating the two in one run. Prints markdown
# table rows (program | uninstrumented | under leakcollect | ratio). Used by scale.sh; on its own:
#   tools/bench/real-programs.sh [runs=3]   (builds the release products first)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
bin=${BIN:-}
work=${WORK:-.build/bench/real}
if [[ -z $bin ]]; then
  # On its own (not from scale.sh, which did this): GNU time and the programs themselves.
  tools/setup.sh --bench
  swift build -c release >/dev/null
  bin=$(swift build -c release --show-bin-path)
fi
mkdir -p "$work"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# wall seconds of a command, as GNU time measures them
timed() { /usr/bin/time -f "%e" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || true; cat "$work/time.txt"; }

cat >"$work/hash.pl" <<'PERL'
my %h; for my $i (1 .. 600_000) { $h{"key$i"} = [$i, "v" x ($i % 40)]; }
my $n = 0; for my $k (keys %h) { $n += $h{$k}[0] } print STDERR "$n\n";
PERL
for prog in "perl $work/hash.pl" "node -e let_a=[];for(let_i=0;i<300000;i++)a.push({i,s:'x'.repeat(i%50)});console.log(a.length)" "java -version"; do
  cmd=${prog//_/ }
  read -r -a argv <<<"$cmd"
  [[ ${argv[0]} == node ]] && argv=(node -e "${cmd#node -e }")
  command -v "${argv[0]}" >/dev/null || { echo "| \`${argv[0]}\` | not installed | | |"; continue; }
  u=(); l=()
  for _ in $(seq "$runs"); do
    u+=("$(timed "${argv[@]}")")
    rm -f "$work"/r.leaks*
    l+=("$(timed "$bin/leakcollect" --quiet -o "$work/r.leaks" -- "${argv[@]}")")
  done
  mu=$(printf '%s\n' "${u[@]}" | median); ml=$(printf '%s\n' "${l[@]}" | median)
  echo "| \`${argv[0]}\` | $mu s | $ml s | $(awk -v a="$ml" -v b="$mu" 'BEGIN { printf "%.1f×", a / b }') |"
done
