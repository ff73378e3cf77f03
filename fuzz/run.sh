#!/usr/bin/env bash
# A short fuzz run of every target: `fuzz/run.sh [SECONDS]` (default 10 per target).
#
# Needs the nightly toolchain (libFuzzer's coverage instrumentation) and cargo-fuzz, which
# is installed from crates.io when missing. Each target starts from fuzz/corpus/<target>/
# (read only: what the run discovers goes to a scratch directory) and stops at the first
# crash, kept in fuzz/artifacts/<target>/; the script then fails with the command that
# replays it. No sanitizer: the router forbids unsafe code, and without ASan a run makes
# several times more executions; debug assertions stay on (integer overflow panics).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-10}"
targets=(sip_guard sdp rtp dialplan digest)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: the nightly Rust toolchain is missing (cargo fuzz needs it):" >&2
  echo "  rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi

echo "== cargo fuzz build (nightly, ${#targets[@]} targets)"
start=$(date +%s)
cargo +nightly fuzz build --sanitizer none
echo "   built in $(($(date +%s) - start)) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  echo "== fuzzing $target for ${seconds} s"
  if cargo +nightly fuzz run --sanitizer none "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "   $target: ${execs:-?} inputs, ${rate:-?} exec/s, no crash"
  else
    tail -n 40 "$log" >&2
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: crashes in ${failed[*]}; replay one with" >&2
  echo "  cd fuzz && cargo +nightly fuzz run --sanitizer none <target> artifacts/<target>/<crash file>" >&2
  exit 1
fi
