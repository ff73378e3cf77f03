#!/usr/bin/env bash
# Memory over many calls: CALLS short trunk calls at RATE calls/s through a release router
# (shipped config, recording on, call journal on) to SEATS auto-answer seats, sampling the
# router's VmRSS every second. Prints completed/failed calls, records/s, RSS at start (seats
# registered, no call yet), every 5,000 calls and at the end, the peak, and the
# database's size on disk.
#
#   loadtest/durability.sh [CALLS=20000] [RATE=100] [SEATS=50] [TALK_MS=200] [CACHE_MB=16]
#
# CACHE_MB sets [store] cache_capacity_mb. Signalling only (no RTP: the recordings hold
# silence), so the run measures the store, not the media.
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-20000}; RATE=${2:-100}; SEATS=${3:-50}; TALK_MS=${4:-200}; CACHE_MB=${5:-16}
command -v sipp >/dev/null || { echo "SIPp missing: apt-get install sip-tester" >&2; exit 1; }
[ -n "${ROUTER_BIN:-}" ] || cargo build --release --quiet

work=$(mktemp -d /tmp/sas-durable.XXXXXX)
SEAT_SIPP=""
# SIGKILL for the seat SIPp: a -bg SIPp still busy ignores SIGTERM (see run.sh).
trap 'kill ${ROUTER:-} $(jobs -p) 2>/dev/null; kill -9 $SEAT_SIPP 2>/dev/null || true; wait 2>/dev/null || true' EXIT
SIP_PORT=25160; HTTP_PORT=28180; SEAT_PORT=25171; SEAT_MEDIA=26100; CALLER_PORT=25180; CALLER_MEDIA=27100
N_SEATS=$SEATS
# shellcheck source=loadtest/router.sh
. loadtest/router.sh

sipp 127.0.0.1:$SIP_PORT -sf tests/sipp/seat_answer.xml -i 127.0.0.1 -p $SEAT_PORT -mp $SEAT_MEDIA \
  -d 0 -nostdin -bg -trace_err -error_file "$work/seat_err.log" > "$work/seat.pid" || true
SEAT_SIPP=$(grep -o '[0-9]\+' "$work/seat.pid")
sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p 25172 -inf "$work/seats.csv" \
  -key contact_port $SEAT_PORT -m "$SEATS" -r 200 -nostdin -timeout 30s > /dev/null
echo "registered $SEATS seats; cache_capacity_mb = $CACHE_MB"

# VmRSS (kB), calls stored so far and the router's threads, every second.
( while kill -0 "$ROUTER" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' /proc/$ROUTER/status)
    threads=$(awk '/Threads/ {print $2}' /proc/$ROUTER/status)
    metrics=$(curl -s "127.0.0.1:$HTTP_PORT/metrics")
    done_calls=$(awk '/^sas_calls_total/ {n += $2} END {print n + 0}' <<< "$metrics")
    # The per-call tables and tasks (sas_live_entries) go to live.log.
    grep '^sas_live_entries' <<< "$metrics" | tr '\n' ' ' | sed "s/^/$done_calls /;s/\$/\\n/" \
      | sed 's/sas_live_entries{table="\([a-z_]*\)"}/\1/g' >> "$work/live.log"
    echo "$(date +%s) $rss $done_calls $threads"
    sleep 1
  done ) > "$work/rss.log" &

sed '/play_pcap_audio/d' tests/sipp/caller.xml > "$work/caller.xml"
start=$(date +%s.%N)
( cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$work/caller.xml" -i 127.0.0.1 -p $CALLER_PORT \
    -mp $CALLER_MEDIA -s 15 -m "$CALLS" -r "$RATE" -d "$TALK_MS" -l 2000 -nostdin -trace_stat \
    -stf stats.csv -timeout $((CALLS / RATE + 120))s > sipp.out 2>&1 ) || true
elapsed=$(python3 -c "import time; print(time.time() - $start)")
sleep 2 # the last records are written after the last BYE
peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$ROUTER/status)
db=$(du -sm "$work/data/sled" | cut -f1)
recs=$(du -sm "$work/data/recordings" 2>/dev/null | cut -f1 || echo 0)

python3 - "$work" "$CALLS" "$elapsed" "$peak_kb" "$db" "$recs" <<'PY'
import csv, sys
work, calls, elapsed, peak, db, recs = sys.argv[1:]
rows = list(csv.reader(open(f"{work}/stats.csv"), delimiter=";"))
head, last = rows[0], rows[-1]
col = lambda name: last[head.index(name)]
ok, failed = int(col("SuccessfulCall(C)")), int(col("FailedCall(C)"))
samples = [tuple(map(int, l.split()))[:3] for l in open(f"{work}/rss.log") if len(l.split()) >= 3]
start_rss = samples[0][1]
def at(fraction):
    want = int(calls) * fraction
    for _, rss, n in samples:
        if n >= want:
            return rss
    return samples[-1][1]
mib = lambda kb: f"{kb / 1024:.0f} MiB"
print(f"calls {ok} completed / {failed} failed in {float(elapsed):.0f} s "
      f"({ok / float(elapsed):.0f} records/s)")
every = [f"{n:,}: {mib(at(n / int(calls)))}" for n in range(5000, int(calls) + 1, 5000)]
print(f"RSS start {mib(start_rss)} | " + " | ".join(every)
      + f" | end {mib(samples[-1][1])} | peak {mib(int(peak))}")
print(f"sled on disk {db} MiB, recordings {recs} MiB ({work})")
PY
