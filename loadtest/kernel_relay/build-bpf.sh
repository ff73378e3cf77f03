#!/usr/bin/env bash
# Rebuilds the checked-in BPF object from bpf/relay.bpf.c (needs clang and libbpf-dev:
# apt-get install clang libbpf-dev). The object is checked in so building the loader needs
# neither; `--check` fails if the checked-in object is not what the source compiles to.
set -euo pipefail
cd "$(dirname "$0")"
out=bpf/relay.bpf.o
[ "${1:-}" = --check ] && out=$(mktemp /tmp/relay.bpf.XXXXXX.o)
# -g for BTF (aya reads the maps' BTF); llvm-strip -g then drops the DWARF, keeping .BTF.
# The source path is mapped to "." so that the BTF line info (and so the object) does not
# depend on where the checkout lives.
clang -O2 -g -fdebug-prefix-map="$PWD"=. -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -c bpf/relay.bpf.c -o "$out"
llvm-strip -g "$out"
if [ "${1:-}" = --check ]; then
  if cmp -s "$out" bpf/relay.bpf.o; then echo "bpf/relay.bpf.o is up to date"; rm -f "$out"
  else echo "bpf/relay.bpf.o is stale: run loadtest/kernel_relay/build-bpf.sh" >&2; rm -f "$out"; exit 1; fi
fi
