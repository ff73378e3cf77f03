#!/usr/bin/env bash
# Rebuilds the checked-in BPF object relay.bpf.o from relay.bpf.c (needs clang, llvm and
# libbpf-dev: apt-get install clang llvm libbpf-dev). The object is checked in so building the
# router needs none of them; `--check` fails if the checked-in object is not what the source
# compiles to (byte-identical for the same clang: CI's bookworm clang 14 is the reference).
set -euo pipefail
cd "$(dirname "$0")"
out=relay.bpf.o
[ "${1:-}" = --check ] && out=$(mktemp /tmp/relay.bpf.XXXXXX.o)
# -g for BTF (aya reads the maps' BTF); llvm-strip -g then drops the DWARF, keeping .BTF.
# The source path is mapped to "." so that the BTF line info (and so the object) does not
# depend on where the checkout lives.
clang -O2 -g -fdebug-prefix-map="$PWD"=. -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -c relay.bpf.c -o "$out"
llvm-strip -g "$out"
if [ "${1:-}" = --check ]; then
  if cmp -s "$out" relay.bpf.o; then echo "src/media/kernel/relay.bpf.o is up to date"; rm -f "$out"
  else echo "src/media/kernel/relay.bpf.o is stale: run src/media/kernel/build-bpf.sh" >&2; rm -f "$out"; exit 1; fi
fi
