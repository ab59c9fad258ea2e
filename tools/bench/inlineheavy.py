#!/usr/bin/env python3
"""Writes a C++ program of N functions, each with an inlined helper and an inlined std::vector push,
calling three others: an -O2 -g build has tens of thousands of call sites inside inlined code, the
symbolizer's worst case. Usage: inlineheavy.py OUT.cpp [N]"""
import random
import sys

out_path = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 6000
random.seed(1)
lines = [
    "#include <cstdlib>",
    "#include <vector>",
    "volatile int sink;",
    "template <int K> struct Box { std::vector<int> v; inline void add(int x) { v.push_back(x + K); if (v.size() > 3) sink += (int)v.size(); } };",
]
for i in range(n):
    lines.append(f"static inline int h{i}(int x) {{ return x * {i % 7 + 1} + (int)(std::malloc(8) != nullptr); }}")
    lines.append(f"__attribute__((noinline)) int f{i}(int x);")
for i in range(n):
    calls = " ".join(f"x += f{random.randrange(n)}(x & 1);" for _ in range(3)) if i > 0 else ""
    lines.append(
        f"__attribute__((noinline)) int f{i}(int x) {{ Box<{i % 50}> b; b.add(h{i}(x)); if (x > 100000) {{ {calls} }} return x + (int)b.v.size(); }}"
    )
lines.append("int main(int c, char **) { return f0(c) & 1; }")
with open(out_path, "w") as f:
    f.write("\n".join(lines) + "\n")
