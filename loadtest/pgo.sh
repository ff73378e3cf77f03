#!/usr/bin/env bash
# Trains the profile-guided optimisation profile that release builds use
# (pgo/sas-router.profdata, through pgo/rustc-wrapper.sh):
#
#   loadtest/pgo.sh
#
# Builds an instrumented release router (target/pgo-train), runs it under the load it is
# built for, with loadtest/run.sh: the shipped plans at 200 calls/s (greeting, queue, an
# ARM seat), the side-by-side's plans (the seat's answer is the caller's) at 200 and 1,000
# calls/s, then 300 recorded G.711 calls relayed both ways; 100 digest-authenticated seats
# register before each. Then merges what it counted (`llvm-profdata merge --sparse`: code
# never run gets no profile, not a cold one) and records the LLVM version that wrote it: a
# compiler with another LLVM builds without it. Train again after a change to the call path
# (code that changed since is built without its profile, the rest keeps theirs).
# Needs llvm-profdata (`rustup component add llvm-tools`) and SIPp (sip-tester).
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
[ -x "$profdata" ] || { echo "llvm-profdata missing: rustup component add llvm-tools" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
SAS_PGO=off RUSTFLAGS="-Cprofile-generate=$work/raw" \
  cargo build --release --quiet --target-dir target/pgo-train
export ROUTER_BIN=target/pgo-train/release/sas-router
export LLVM_PROFILE_FILE="$work/raw/router-%p-%m.profraw"
# shellcheck source=loadtest/plans.sh
. loadtest/plans.sh
plans_without_greeting "$work/plans"
loadtest/run.sh 4000 200 100 0 0
DIALPLANS="$work/plans" loadtest/run.sh 4000 200 100 0 0
DIALPLANS="$work/plans" loadtest/run.sh 10000 1000 100 0 0
loadtest/run.sh 300 20 100 3000 1
ls "$work"/raw/router-*.profraw > /dev/null
"$profdata" merge --sparse -o pgo/sas-router.profdata "$work"/raw/router-*.profraw
rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p' > pgo/llvm-version
echo "pgo/sas-router.profdata ($(du -k pgo/sas-router.profdata | cut -f1) KiB) for LLVM $(cat pgo/llvm-version)"
