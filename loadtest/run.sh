#!/usr/bin/env bash
# Load driver: N trunk calls at R calls/s through a release router to S auto-answer seats.
# Prints completed/failed calls, setup latency p50/p99 (INVITE→180 and INVITE→200) and the
# router's CPU time, peak RSS, and CPU and context switches (wake-ups) per call.
#
#   loadtest/run.sh [CALLS=500] [RATE=20] [SEATS=100] [TALK_MS=2000] [AUDIO=1]
#
# AUDIO=1 plays G.711 from a pcap in every call (relayed both ways: the seats echo it);
# AUDIO=0 measures signalling only.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-500}; RATE=${2:-20}; SEATS=${3:-100}; TALK_MS=${4:-2000}; AUDIO=${5:-1}
command -v sipp >/dev/null || { echo "SIPp missing: apt-get install sip-tester" >&2; exit 1; }
[ -n "${ROUTER_BIN:-}" ] || cargo build --release --quiet

# shellcheck source=loadtest/data_fs.sh
. loadtest/data_fs.sh
work=$(mktemp -d "$WORK_ROOT/sas-load.XXXXXX")
SEAT_SIPP=""
# The work directory (router data and recordings: GBs when a run falls behind) goes at exit
# unless KEEP_WORK=1.
# SIGKILL for the seat SIPp: a -bg SIPp still busy with calls ignores SIGTERM, and it holds
# the bench lock's descriptor it inherited (a run that fell behind left the lock taken).
trap 'kill $(jobs -p) 2>/dev/null; kill -9 $SEAT_SIPP 2>/dev/null || true; wait 2>/dev/null || true
      [ "${KEEP_WORK:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"' EXIT
SIP_PORT=25060; HTTP_PORT=28080; SEAT_PORT=25071; SEAT_MEDIA=26000; CALLER_PORT=25080; CALLER_MEDIA=27000

# Config: the shipped one, on load-test ports, with S seats (HA1 from their passwords), and
# overload limits off unless OVERLOAD_SECTION says otherwise (loadtest/router.sh): the shipped
# max_call_rate would shed every call above 100/s.
N_SEATS=$SEATS
export OVERLOAD_SECTION=${OVERLOAD_SECTION:-off}
# shellcheck source=loadtest/router.sh
. loadtest/router.sh

# One auto-answer SIPp serves every seat (all Contacts point at it). -bg exits 99 by design.
sipp 127.0.0.1:$SIP_PORT -sf tests/sipp/seat_answer.xml -i 127.0.0.1 -p $SEAT_PORT -mp $SEAT_MEDIA \
  -rtp_echo -d 0 -nostdin -bg -trace_err -error_file "$work/seat_err.log" > "$work/seat.pid" || true
SEAT_SIPP=$(grep -o '[0-9]\+' "$work/seat.pid")
sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p 25072 -inf "$work/seats.csv" \
  -key contact_port $SEAT_PORT -m "$SEATS" -r 200 -nostdin -timeout 30s > /dev/null
echo "registered $SEATS seats"

clk=$(getconf CLK_TCK)
cpu_before=$(awk '{print $14+$15}' /proc/$ROUTER/stat)
# Context switches of the router's threads (wake-ups): summed over the threads alive at each
# end (a thread that exits between takes its count with it).
switches() { cat /proc/$ROUTER/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'; }
switches_before=$(switches)
# Per thread name (sled-io-1…7 as sled-io): CPU ticks and context switches, for where the
# wake-ups are (printed per call at the end).
threads() {
  for t in /proc/$ROUTER/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    echo "${name%%-[0-9]*} $(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12 + $13}') $(awk '/ctxt_switches/ {n += $2} END {print n + 0}' "$t/status" 2>/dev/null)"
  done
}
threads > "$work/threads.before"
kernel_io_before=$(kernel_io_ticks)
scenario="$PWD/tests/sipp/caller.xml"
[ "$AUDIO" = 1 ] || { sed '/play_pcap_audio/d' tests/sipp/caller.xml > "$work/caller.xml"; scenario="$work/caller.xml"; }
start=$(date +%s.%N)
( cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$scenario" -i 127.0.0.1 -p $CALLER_PORT -mp $CALLER_MEDIA \
    -s 15 -m "$CALLS" -r "$RATE" -d "$TALK_MS" -l 5000 -nostdin -trace_err -trace_stat -trace_rtt -rtt_freq 1 \
    -stf stats.csv -timeout $((CALLS / RATE + 60))s > sipp.out 2>&1 ) || true
elapsed=$(python3 -c "import time; print(time.time() - $start)")
cpu_after=$(awk '{print $14+$15}' /proc/$ROUTER/stat)
switches_after=$(switches)
threads > "$work/threads.after"
kernel_io_after=$(kernel_io_ticks)
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ROUTER/status)
# METRICS_OUT=FILE: the router's /metrics as the run ends.
[ -z "${METRICS_OUT:-}" ] || curl -sf "127.0.0.1:$HTTP_PORT/metrics" > "$METRICS_OUT" || true

python3 - "$work" "$CALLS" "$RATE" "$elapsed" "$cpu_before" "$cpu_after" "$clk" "$rss_kb" "$AUDIO" "$SEATS" \
  "$switches_before" "$switches_after" "$(kernel_io_delta "$kernel_io_before" "$kernel_io_after")" <<'PY'
import csv, glob, sys
work, calls, rate, elapsed, c0, c1, clk, rss, audio, seats, s0, s1, kernel_io = sys.argv[1:]
rows = list(csv.reader(open(f"{work}/stats.csv"), delimiter=";"))
head, last = rows[0], rows[-1]
col = lambda name: last[head.index(name)]
ok, failed = int(col("SuccessfulCall(C)")), int(col("FailedCall(C)"))
rtd = {"ringing": [], "answer": []}
for f in glob.glob(f"{work}/*_rtt.csv"):
    for r in list(csv.reader(open(f), delimiter=";"))[1:]:
        # Date_ms;response_time_ms;rtd_name (SIPp reports whole milliseconds)
        if len(r) >= 3 and r[2] in rtd:
            rtd[r[2]].append(float(r[1]))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")
cpu = (float(c1) - float(c0)) / float(clk)
print(f"calls={calls} rate={rate}/s seats={seats} audio={'on' if audio == '1' else 'off'}")
print(f"completed={ok} failed={failed} ({100 * failed / max(1, ok + failed):.2f} %) wall={float(elapsed):.1f}s")
for name, label in (("ringing", "INVITE->180"), ("answer", "INVITE->200")):
    v = rtd[name]
    print(f"{label}: n={len(v)} p50={pct(v, 50):.0f} ms p99={pct(v, 99):.0f} ms max={max(v, default=float('nan')):.0f} ms")
print(f"router cpu={cpu:.2f}s ({100 * cpu / float(elapsed):.1f} % of one core) peak_rss={int(rss) / 1024:.1f} MiB")
done = max(1, ok + failed)
print(f"per call: cpu={1000 * cpu / done:.2f} ms context_switches={(int(s1) - int(s0)) / done:.1f}")
def by_name(path):
    sums = {}
    for line in open(path):
        parts = line.split()
        if len(parts) == 3:
            ticks, switches = sums.get(parts[0], (0, 0))
            sums[parts[0]] = (ticks + int(parts[1]), switches + int(parts[2]))
    return sums
b, a = by_name(f"{work}/threads.before"), by_name(f"{work}/threads.after")
rows = []
for name, (ticks, switches) in a.items():
    t0, s0_ = b.get(name, (0, 0))
    rows.append((name, 1000 * (ticks - t0) / float(clk) / done, (switches - s0_) / done))
print(f"kernel IO threads (kworker, jbd2, loop, ksoftirqd; machine-wide): {1000 * int(kernel_io) / float(clk) / done:.2f} ms per call")
print("per call by thread: " + ", ".join(f"{n} {c:.2f} ms {s:.1f} sw" for n, c, s in sorted(rows, key=lambda r: -r[1]) if c > 0 or s >= 0.1))
PY
