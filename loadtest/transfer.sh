#!/usr/bin/env bash
# Escalation load: N calls to the 15 at R calls/s through a release router; every call is
# answered by an ARM seat that talks ARM_MS, then transfers it by REFER to 2001 (AMU, blind,
# P2); an AMU regulator seat answers at once and stays until the caller hangs up.
# Prints completed/failed per party, the escalation delay (REFER accepted → regulator
# bridged, from the call records) p50/p99, and the router's CPU and peak RSS.
#
#   loadtest/transfer.sh [CALLS=300] [RATE=10] [ARMS=50] [AMUS=50] [ARM_MS=2000] [TALK_MS=6000]
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-300}; RATE=${2:-10}; SEATS=${3:-50}; N_AMU=${4:-50}; ARM_MS=${5:-2000}; TALK_MS=${6:-6000}
command -v sipp >/dev/null || { echo "SIPp missing: apt-get install sip-tester" >&2; exit 1; }
cargo build --release --quiet

work=$(mktemp -d /tmp/sas-transfer.XXXXXX)
PIDS=""
trap 'kill $(jobs -p) $PIDS 2>/dev/null || true; wait 2>/dev/null || true' EXIT
SIP_PORT=25060; HTTP_PORT=28080; ARM_PORT=25071; AMU_PORT=25073; CALLER_PORT=25080
N_SEATS=$SEATS
# shellcheck source=loadtest/router.sh
. loadtest/router.sh

# One SIPp per side serves all its seats (every Contact points at it); -bg exits 99 by design.
background() { # name, then SIPp arguments
  local name=$1; shift
  sipp 127.0.0.1:$SIP_PORT "$@" -i 127.0.0.1 -nostdin -bg -trace_err -trace_stat \
    -fd 1 -stf "$work/$name-stats.csv" -error_file "$work/$name-err.log" > "$work/$name.pid" || true
  PIDS="$PIDS $(grep -o '[0-9]\+' "$work/$name.pid")"
}
background arm -key target 2001 -key priority P2 -sf tests/sipp/seat_refers.xml \
  -p $ARM_PORT -mp 26000 -rtp_echo -d "$ARM_MS"
background amu -sf tests/sipp/seat_answer.xml -p $AMU_PORT -mp 26500 -rtp_echo -d 0
for side in "seats:$ARM_PORT:$SEATS" "amu:$AMU_PORT:$N_AMU"; do
  IFS=: read -r csv port n <<< "$side"
  sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p 25072 \
    -inf "$work/$csv.csv" -key contact_port "$port" -m "$n" -r 200 -nostdin -timeout 30s > /dev/null
done
echo "registered $SEATS ARM and $N_AMU AMU seats"

clk=$(getconf CLK_TCK)
cpu_before=$(awk '{print $14+$15}' /proc/$ROUTER/stat)
start=$(date +%s.%N)
( cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$OLDPWD/tests/sipp/caller.xml" -i 127.0.0.1 \
    -p $CALLER_PORT -mp 27000 -s 15 -m "$CALLS" -r "$RATE" -d "$TALK_MS" -l 5000 -nostdin \
    -trace_stat -stf caller-stats.csv -timeout $((CALLS / RATE + 90))s > caller.out 2>&1 ) || true
elapsed=$(python3 -c "import time; print(time.time() - $start)")
cpu_after=$(awk '{print $14+$15}' /proc/$ROUTER/stat)
rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$ROUTER/status)
sleep 3
curl -sf -H "Authorization: Bearer $(cat "$work/data/admin.token")" \
  "127.0.0.1:$HTTP_PORT/api/calls?limit=$CALLS" > "$work/records.json"

python3 - "$work" "$CALLS" "$RATE" "$elapsed" "$cpu_before" "$cpu_after" "$clk" "$rss_kb" <<'PY'
import csv, json, sys
work, calls, rate, elapsed, c0, c1, clk, rss = sys.argv[1:]
def counts(name):
    rows = list(csv.reader(open(f"{work}/{name}-stats.csv"), delimiter=";"))
    head, last = rows[0], rows[-1]
    return int(last[head.index("SuccessfulCall(C)")]), int(last[head.index("FailedCall(C)")])
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")
print(f"calls={calls} rate={rate}/s")
for name in ("caller", "arm", "amu"):
    ok, failed = counts(name)
    print(f"{name}: completed={ok} failed={failed}")
records = json.load(open(f"{work}/records.json"))
delays, escalated = [], 0
for r in records:
    seats = [h["seat"] for h in r.get("handlers", [])]
    if len(seats) == 2 and seats[1].startswith("amu"):
        escalated += 1
        transfer = next(e["at"] for e in r["events"] if e["kind"] == "TRANSFER")
        connect = [e["at"] for e in r["events"] if e["kind"] == "CONNECT"][-1]
        delays.append(connect - transfer)
print(f"records={len(records)} escalated ARM->AMU={escalated}")
print(f"escalation delay (TRANSFER->CONNECT): p50={pct(delays, 50):.0f} ms p99={pct(delays, 99):.0f} ms max={max(delays, default=float('nan')):.0f} ms")
cpu = (float(c1) - float(c0)) / float(clk)
print(f"router cpu={cpu:.2f}s ({100 * cpu / float(elapsed):.1f} % of one core) peak_rss={int(rss) / 1024:.1f} MiB wall={float(elapsed):.1f}s")
PY
