#!/usr/bin/env bash
# The router's background cost: CPU and wake-ups per second with S registered seats and no
# calls (RATE=0) or a trickle of trunk calls (RATE calls/s, hold 0), over SECONDS.
#
#   loadtest/idle.sh [SECONDS=30] [SEATS=100] [RATE=0]
#
# Prints the router's CPU in ms per second and its context switches per second, in total
# and per thread name (from /proc/<pid>/task/*/status, threads alive at both ends).
# ROUTER_BIN runs another build, as in loadtest/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}; SEATS=${2:-100}; RATE=${3:-0}
[ -n "${ROUTER_BIN:-}" ] || cargo build --release --quiet
# Overload limits off unless OVERLOAD_SECTION says otherwise (loadtest/router.sh): the
# shipped max_call_rate would shed part of a faster trickle.
export OVERLOAD_SECTION=${OVERLOAD_SECTION:-off}
work=$(mktemp -d /tmp/sas-idle.XXXXXX)
SEAT_SIPP=""
trap 'kill $(jobs -p) $SEAT_SIPP 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
SIP_PORT=${SIP_PORT:-25160}; HTTP_PORT=${HTTP_PORT:-28180}; SEAT_PORT=25171; CALLER_PORT=25180
N_SEATS=$SEATS
# shellcheck source=loadtest/router.sh
. loadtest/router.sh
sipp 127.0.0.1:$SIP_PORT -sf tests/sipp/seat_answer.xml -i 127.0.0.1 -p $SEAT_PORT -mp 26100 \
  -d 0 -nostdin -bg > "$work/seat.pid" || true
SEAT_SIPP=$(grep -o '[0-9]\+' "$work/seat.pid")
sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p 25172 -inf "$work/seats.csv" \
  -key contact_port $SEAT_PORT -m "$SEATS" -r 200 -nostdin -timeout 30s > /dev/null
sleep 2
if [ "$RATE" != 0 ]; then
  sed '/play_pcap_audio/d' tests/sipp/caller.xml > "$work/caller.xml"
  ( cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf caller.xml -i 127.0.0.1 -p $CALLER_PORT -mp 27100 \
      -r "$RATE" -d 0 -nostdin -m $((RATE * (SECS + 4))) > /dev/null 2>&1 || true ) &
  sleep 2
fi
# Per thread: tid, name, CPU ticks, context switches (a thread gone meanwhile is skipped).
snap() {
  for t in /proc/$ROUTER/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    cpu=$(awk '{print $14 + $15}' "$t/stat" 2>/dev/null) || continue
    sw=$(awk '/ctxt_switches/ {n += $2} END {print n + 0}' "$t/status" 2>/dev/null) || continue
    printf '%s\t%s\t%s\t%s\n' "${t##*/}" "$comm" "$cpu" "$sw"
  done
}
snap > "$work/a"
sleep "$SECS"
snap > "$work/b"
python3 - "$work/a" "$work/b" "$SECS" "$(getconf CLK_TCK)" "$RATE" <<'PY'
import sys, collections
a = {l.split("\t")[0]: l.rstrip("\n").split("\t") for l in open(sys.argv[1])}
b = {l.split("\t")[0]: l.rstrip("\n").split("\t") for l in open(sys.argv[2])}
secs, clk, rate = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
by = collections.defaultdict(lambda: [0, 0.0, 0])
for tid, (_, comm, cpu, sw) in b.items():
    if tid in a:
        g = by[comm]
        g[0] += 1; g[1] += (float(cpu) - float(a[tid][2])) / clk; g[2] += int(sw) - int(a[tid][3])
cpu = sum(g[1] for g in by.values()); sw = sum(g[2] for g in by.values())
print(f"router over {secs:.0f} s, {rate} calls/s: cpu={1000 * cpu / secs:.1f} ms/s switches={sw / secs:.0f}/s threads={sum(g[0] for g in by.values())}")
for comm, (n, c, s) in sorted(by.items(), key=lambda kv: -kv[1][2]):
    if c or s:
        print(f"  {comm:<18} x{n:<4} cpu={1000 * c / secs:6.1f} ms/s switches={s / secs:7.1f}/s")
PY
