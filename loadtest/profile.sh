#!/usr/bin/env bash
# Flame graph of the release router under SIPp load:
#
#   loadtest/profile.sh [RATE=300] [SECONDS=20] [SEATS=100] [AUDIO=0]
#
# Runs loadtest/run.sh (RATE × SECONDS trunk calls, hold 0, to SEATS auto-answer seats;
# AUDIO=1 plays G.711 in every call) with the router under `perf record` (199 Hz, DWARF
# call graphs: the release build keeps its unwind tables, no special build needed), then
# writes loadtest/out/profile-RATE-DATE.svg (inferno) and prints run.sh's figures and the
# top self-time symbols. Overload limits are off unless OVERLOAD_SECTION says otherwise (see
# loadtest/router.sh). ROUTER_BIN profiles another build (not under /tmp: perf 6.1 here
# reads no symbols from binaries there). Needs perf (Debian `linux-perf`) and inferno
# (`cargo install inferno`).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-300}; SECS=${2:-20}; SEATS=${3:-100}; AUDIO=${4:-0}
for tool in perf inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || { echo "$tool missing (perf: apt-get install linux-perf; inferno: cargo install inferno)" >&2; exit 1; }
done
mkdir -p loadtest/out
# shellcheck source=loadtest/data_fs.sh
. loadtest/data_fs.sh
work=$(mktemp -d "$WORK_ROOT/sas-profile.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OVERLOAD_SECTION=${OVERLOAD_SECTION:-off}
svg="loadtest/out/profile-$RATE-$(date -u +%Y%m%dT%H%M%SZ).svg"

ROUTER_WRAP="perf record -q -F 199 -g --call-graph dwarf,16384 -o $work/perf.data" \
  loadtest/run.sh $((RATE * SECS)) "$RATE" "$SEATS" 0 "$AUDIO"

perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf --tid > "$work/stacks"
cp "$work/stacks" "${svg%.svg}.folded"
inferno-flamegraph --title "sas-router, $RATE calls/s for $SECS s" < "$work/stacks" > "$svg"
echo "flame graph: $svg (folded stacks: ${svg%.svg}.folded)"
echo "CPU by thread (share of samples):"
perf report -i "$work/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
echo "top self time (share of samples):"
perf report -i "$work/perf.data" --no-children -g none --percent-limit 0.7 --sort dso,symbol \
  --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
