#!/usr/bin/env bash
# INVITE flood at a multiple of capacity through a release router (README "Overload"):
# the shipped configuration (recording on) with S registered SIPp seats, a SIPp trunk caller
# placing signalling-only calls (hold HOLD_MS) at RATE calls/s for SECONDS, then a normal
# rate (AFTER_RATE calls/s for 10 s) right after. Prints SIPp's counts (every INVITE must
# end in a final answer: a 503 from overload control counts as one, a timeout does not),
# calls shed by reason, INVITE->200 of admitted calls, and the router's RSS (before, peak
# during the flood, after), sampled every second.
#
#   loadtest/overload.sh [RATE=1000] [SECONDS=60] [SEATS=100] [HOLD_MS=0]
#   env: AFTER_RATE=20, ROUTER_BIN=path (another build, e.g. main before overload control,
#        with OVERLOAD_SECTION=0), OVERLOAD_SECTION="max_call_rate = 50;max_calls = 500"
#        (replaces the shipped [overload] body; ';' separates lines)
#
# Minutes long: not part of the test suite (the behaviour is: `cargo test --test it
# e2e_overload::`).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}; SECONDS_=${2:-60}; SEATS=${3:-100}; HOLD_MS=${4:-0}; AFTER_RATE=${AFTER_RATE:-20}
command -v sipp >/dev/null || { echo "SIPp missing: apt-get install sip-tester" >&2; exit 1; }
[ -n "${ROUTER_BIN:-}" ] || cargo build --release --quiet
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/sas-overload.XXXXXX)
SEAT_SIPP=""; SAMPLER=""
# SIGKILL for the seat SIPp: a -bg SIPp still busy ignores SIGTERM (see run.sh).
trap 'kill $(jobs -p) $SAMPLER 2>/dev/null; kill -9 $SEAT_SIPP 2>/dev/null || true; wait 2>/dev/null || true' EXIT
# Outside the router's RTP range (20000-29999) and the kernel's ephemeral ports.
SIP_PORT=35060; HTTP_PORT=38080; SEAT_PORT=35071; SEAT_MEDIA=36000; CALLER_PORT=35080; CALLER_MEDIA=37000

N_SEATS=$SEATS
# shellcheck source=loadtest/router.sh
. loadtest/router.sh

sipp 127.0.0.1:$SIP_PORT -sf tests/sipp/seat_answer.xml -i 127.0.0.1 -p $SEAT_PORT -mp $SEAT_MEDIA \
  -rtp_echo -d 0 -nostdin -bg -trace_err -error_file "$work/seat_err.log" > "$work/seat.pid" || true
SEAT_SIPP=$(grep -o '[0-9]\+' "$work/seat.pid")
sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p 35072 -inf "$work/seats.csv" \
  -key contact_port $SEAT_PORT -m "$SEATS" -r 200 -nostdin -timeout 30s > /dev/null
echo "registered $SEATS seats"

rss() { awk '/VmRSS/ {print $2}' "/proc/$ROUTER/status" 2>/dev/null || echo 0; }
metric_sum() { # sum of the samples of a metric whose line matches $1
  curl -sf "127.0.0.1:$HTTP_PORT/metrics" | awk -v re="$1" '$0 ~ re && $0 !~ /^#/ {s += $NF} END {print s + 0}'
}
# Every second: time, RSS (kB), threads, queue delay (ms), calls in progress (as counted).
( while :; do
    m=$(curl -sf -m 1 "127.0.0.1:$HTTP_PORT/metrics" || true)
    d=$(echo "$m" | awk '/^sas_overload_queue_delay_seconds/ {printf "%d", $2 * 1000}')
    c=$(echo "$m" | awk '/^sas_overload_calls_in_progress/ {print $2}')
    echo "$(date +%s) $(rss) $(awk '/Threads/ {print $2}' /proc/$ROUTER/status 2>/dev/null) ${d:--} ${c:--}"
    sleep 1
  done ) > "$work/rss.log" &
SAMPLER=$!
rss_before=$(rss)

# calls place(rate, calls, tag): one SIPp trunk caller; its stats and rtt files under $work/tag.
place() {
  mkdir -p "$work/$3"
  ( cd "$work/$3" && sipp 127.0.0.1:$SIP_PORT -sf "$OLDPWD/loadtest/caller_overload.xml" -i 127.0.0.1 \
      -p $CALLER_PORT -mp $CALLER_MEDIA -s 15 -m "$2" -r "$1" -d "$HOLD_MS" -l 20000 -nostdin \
      -trace_stat -stf stats.csv -trace_rtt -rtt_freq 1 -timeout $(( $2 / $1 + 90 ))s \
      -max_socket 60000 > sipp.out 2>&1 ) || true
}
shed_before=$(metric_sum '^sas_overload_shed_total')
start=$(date +%s.%N)
place "$RATE" $((RATE * SECONDS_)) flood
flood_s=$(python3 -c "import time; print(round(time.time() - $start, 1))")
rss_flood_end=$(rss)
shed_flood=$(( $(metric_sum '^sas_overload_shed_total') - shed_before ))
for r in calls rate delay; do
  echo "shed[$r]=$(metric_sum "^sas_overload_shed_total\\{reason=\"$r\"\\}")"
done > "$work/shed.txt"
place "$AFTER_RATE" $((AFTER_RATE * 10)) after
shed_after=$(( $(metric_sum '^sas_overload_shed_total') - shed_before - shed_flood ))
sleep 5
rss_after=$(rss)
kill "$SAMPLER" 2>/dev/null || true; SAMPLER=""
curl -sf "127.0.0.1:$HTTP_PORT/metrics" > "$work/metrics.txt" || true

python3 - "$work" "$RATE" "$SECONDS_" "$flood_s" "$rss_before" "$rss_flood_end" "$rss_after" "$shed_flood" "$shed_after" "$AFTER_RATE" <<'PY'
import csv, glob, sys
work, rate, secs, flood_s, r0, r1, r2, shed, shed_after, after_rate = sys.argv[1:]
def stats(tag):
    rows = list(csv.reader(open(f"{work}/{tag}/stats.csv"), delimiter=";"))
    head, last = rows[0], rows[-1]
    col = lambda n: int(last[head.index(n)]) if n in head else 0
    rtd = sorted(float(r[1]) for f in glob.glob(f"{work}/{tag}/*_rtt.csv")
                 for r in list(csv.reader(open(f), delimiter=";"))[1:] if len(r) >= 3 and r[2] == "answer")
    return col("OutgoingCall(C)") or col("TotalCallCreated"), col("SuccessfulCall(C)"), col("FailedCall(C)"), \
        col("FailedMaxUDPRetrans(C)") + col("FailedTimeoutOnRecv(C)"), col("FailedCallRejected(C)"), col("FailedUnexpectedMessage(C)"), \
        col("FailedCmdNotSent(C)"), col("Retransmissions(C)"), rtd
def pct(v, p):
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")
peak = max((int(l.split()[1]) for l in open(f"{work}/rss.log") if len(l.split()) > 1), default=0)
threads = max((int(l.split()[2]) for l in open(f"{work}/rss.log") if len(l.split()) > 2), default=0)
for tag, label in (("flood", f"flood {rate}/s for {secs} s"), ("after", f"after: {after_rate}/s for 10 s")):
    made, ok, failed, maxretrans, rejected, unexpected, notsent, retrans, rtd = stats(tag)
    shed_n = int(shed if tag == "flood" else shed_after)
    # ok = answered 200 and completed, or answered 503 (shed, or refused: no RTP port...).
    answered = len(rtd)
    refused = ok - answered
    admitted = made - shed_n
    print(f"{label}: INVITEs={made}" + (f" in {flood_s} s ({made / float(flood_s):.0f}/s)" if tag == "flood" else ""))
    print(f"  final answer={ok} ({100 * ok / max(1, made):.2f} %) failed={failed} (timeouts={maxretrans} "
          f"unexpected={unexpected} rejected={rejected} not-sent={notsent}) SIPp retransmissions={retrans}")
    print(f"  503={refused} of which shed by overload control={shed_n} ({100 * shed_n / max(1, made):.1f} %); "
          f"admitted={admitted}, answered and completed={answered} ({100 * answered / max(1, admitted):.2f} % of admitted)")
    print(f"  INVITE->200 of admitted: n={len(rtd)} p50={pct(rtd, 50):.0f} ms p99={pct(rtd, 99):.0f} ms max={max(rtd, default=float('nan')):.0f} ms")
print(open(f"{work}/shed.txt").read().strip().replace("\n", " "))
print(f"router RSS: before={int(r0) / 1024:.1f} MiB peak={peak / 1024:.1f} MiB end of flood={int(r1) / 1024:.1f} MiB "
      f"after={int(r2) / 1024:.1f} MiB; threads peak={threads}")
print(f"(work dir: {work})")
PY
