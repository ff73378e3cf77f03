#!/usr/bin/env bash
# Media load: CONCURRENT trunk calls held HOLD_S seconds through a release router to as many
# SIPp seats, with G.711 RTP both ways played from pcaps (caller 1000 Hz, seat 440 Hz, 50
# packets/s each way, LOSS_PERCENT of the packets removed from the pcaps to simulate loss:
# netem is not available in this container). Once every call is bridged it measures, over a
# steady-state window, the router's CPU (utime+stime from /proc), RSS, and RTP packets
# relayed per second (sas_rtp_packets_relayed_total), plus the two SIPp processes' CPU.
#
#   loadtest/media.sh [CONCURRENT=100] [LOSS_PERCENT=0] [HOLD_S=60]
#   env: RATE=50 (calls/s while ramping up), WINDOW_S=20 (longest measurement window),
#        INFO=0 (1: callers send their SIP INFO digit halfway, as in
#        tests/sipp/caller_media.xml), MEDIA=pcap|stream (see below)
#
# MEDIA=pcap (default) plays the pcaps with SIPp's play_pcap_audio: one thread and one raw
# socket per call in each SIPp. Every raw IPPROTO_UDP socket bound to 127.0.0.1 gets a
# clone of every UDP datagram sent to 127.0.0.1 (SIPp never reads them: the kernel clones,
# then drops), so the kernel work grows as calls x packets/s, i.e. with the square of the
# call count, and is charged to whoever sends - the router included (SIPp issue #593,
# PR #571). Fine at 100 calls; beyond, use MEDIA=stream: SIPp's rtp_stream (a pool of
# threads sending from SIPp's one media socket, no raw socket), which cannot drop packets
# (LOSS_PERCENT must be 0). Both SIPp processes' CPU is reported next to the router's.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}; LOSS=${2:-0}; HOLD_S=${3:-60}
RATE=${RATE:-50}; WINDOW_S=${WINDOW_S:-20}; INFO=${INFO:-0}; MEDIA=${MEDIA:-pcap}
case "$MEDIA" in
  pcap) ;;
  stream) [ "$LOSS" = 0 ] || { echo "MEDIA=stream cannot drop packets: LOSS_PERCENT must be 0" >&2; exit 1; } ;;
  *) echo "MEDIA is pcap or stream" >&2; exit 1 ;;
esac
command -v sipp >/dev/null || { echo "SIPp missing: apt-get install sip-tester" >&2; exit 1; }

# Open files: the router holds an RTP and an RTCP socket per bound leg (2 legs a call here; 3
# in builds that bound every leg at the INVITE); each SIPp one raw socket per playing call.
need=$((N * 6 + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  echo "warning: open-files hard limit $hard < $need needed for $N calls" >&2
  ulimit -n "$hard"
else
  ulimit -n "$need"
fi

cargo build --release --quiet
work=$(mktemp -d /tmp/sas-media-load.XXXXXX)
# The pcaps come from the test tooling (tests/it/common/media.rs), a little longer than a call.
MEDIA_PCAP_DIR="$work" MEDIA_PCAP_SECONDS=$((HOLD_S + 5)) MEDIA_LOSS_PERCENT="$LOSS" \
  cargo test --quiet --test it media_tooling::write_loadtest_pcaps -- --ignored --exact --nocapture \
  | grep pcap: || { echo "pcap generation failed" >&2; exit 1; }

SEAT_SIPP=""; ROUTER=""
# SIGKILL for the seat SIPp: a -bg SIPp still busy ignores SIGTERM (see run.sh).
trap 'kill $(jobs -p) 2>/dev/null; kill -9 $SEAT_SIPP 2>/dev/null || true; wait 2>/dev/null || true' EXIT
# Outside the router's RTP range (20000-29999) and the kernel's ephemeral ports.
SIP_PORT=15060; HTTP_PORT=18080; SEAT_PORT=15071; REG_PORT=15072; CALLER_PORT=15080
SEAT_MEDIA=16000; CALLER_MEDIA=17000

N_SEATS=$N
# shellcheck source=loadtest/router.sh
. loadtest/router.sh

metric_sum() { # sum of the samples of a metric whose line matches $1
  curl -sf "127.0.0.1:$HTTP_PORT/metrics" | awk -v re="$1" '$0 ~ re {s += $NF} END {print s + 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# utime+stime of every process ("pid ticks" lines): /proc/stat's tick sampling misses the
# short timer-driven bursts RTP is made of, per-process times do not.
all_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '{print $1, $14 + $15}'; }

# Scenario variants in $work: without the INFO (unless INFO=1); with rtp_stream (MEDIA=stream).
python3 - "$work" "$INFO" "$MEDIA" <<'PY'
import re, sys
work, info, media = sys.argv[1:]
for name, raw in (("caller_media.xml", "caller.alaw"), ("seat_media.xml", "seat.alaw")):
    text = open(f"tests/sipp/{name}").read()
    if name == "caller_media.xml" and info != "1":
        # The INFO request and the 200 it waits for.
        text, n = re.subn(r'  <send retrans="500">\s*<!\[CDATA\[\s*INFO .*?</send>\s*<recv response="200"/>\n',
                          '', text, flags=re.S)
        assert n == 1, "INFO block not found"
    if media == "stream":
        text, n = re.subn(r'<exec play_pcap_audio="\[pcap\]"/>', f'<exec rtp_stream="{work}/{raw},-1,8"/>', text)
        assert n == 1, "play_pcap_audio not found"
    open(f"{work}/{name}", "w").write(text)
PY

# One SIPp seat instance answers every call (all Contacts point at it) and plays seat.pcap.
# -key before -sf: SIPp reads the pcap with the scenario. -bg exits 99 by design.
sipp 127.0.0.1:$SIP_PORT -key pcap "$work/seat.pcap" -key rtp_port $SEAT_MEDIA \
  -sf "$work/seat_media.xml" -i 127.0.0.1 -p $SEAT_PORT -mp $SEAT_MEDIA -d 0 -l $((N + 10)) \
  -nostdin -bg -trace_err -error_file "$work/seat_err.log" > "$work/seat.pid" || true
SEAT_SIPP=$(sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p' "$work/seat.pid")
sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p $REG_PORT -inf "$work/seats.csv" \
  -key contact_port $SEAT_PORT -m "$N" -r 200 -nostdin -timeout 60s > /dev/null
echo "registered $N seats"

# Each call: (INFO halfway,) BYE at HOLD_S.
half=$((HOLD_S * 500))
start=$(date +%s.%N)
( cd "$work" && exec sipp 127.0.0.1:$SIP_PORT -key pcap "$work/caller.pcap" -key rtp_port $CALLER_MEDIA \
    -sf "$work/caller_media.xml" -set tail_ms $half -i 127.0.0.1 -p $CALLER_PORT \
    -mp $CALLER_MEDIA -s 15 -m "$N" -r "$RATE" -l "$N" -d $half -nostdin -trace_stat -fd 1 \
    -stf stats.csv -trace_err -timeout $((HOLD_S + N / RATE + 120))s > sipp.out 2>&1 ) &
CALLER_SIPP=$!

# Steady state: every call bridged (N busy seats).
deadline=$(( $(date +%s) + N / RATE + 60 ))
while [ "$(metric_sum '^sas_seats\{.*state="busy"')" -lt "$N" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { echo "not all calls bridged: $(metric_sum '^sas_seats\{.*state="busy"') / $N" >&2; break; }
  sleep 0.5
done
up=$(python3 -c "import time; print(round(time.time() - $start, 1))")
busy=$(metric_sum '^sas_seats\{.*state="busy"')
sleep 2
# The window ends 3 s before the first call hangs up.
window=$(python3 -c "print(max(2, min($WINDOW_S, $HOLD_S - ($up + 2) - 3)))")
clk=$(getconf CLK_TCK)
r0=$(cpu_ticks $ROUTER); s0=$(cpu_ticks "$SEAT_SIPP"); c0=$(cpu_ticks "$CALLER_SIPP")
p0=$(metric_sum '^sas_rtp_packets_relayed_total'); all_ticks > "$work/ticks0"; t0=$(date +%s.%N)
sleep "$window"
r1=$(cpu_ticks $ROUTER); s1=$(cpu_ticks "$SEAT_SIPP"); c1=$(cpu_ticks "$CALLER_SIPP")
p1=$(metric_sum '^sas_rtp_packets_relayed_total'); all_ticks > "$work/ticks1"; t1=$(date +%s.%N)
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$ROUTER/status)
threads=$(awk '/Threads/ {print $2}' /proc/$ROUTER/status)
fds=$(ls /proc/$ROUTER/fd | wc -l)
busy_end=$(metric_sum '^sas_seats\{.*state="busy"')

wait $CALLER_SIPP || true
hwm_kb=$(awk '/VmHWM/ {print $2}' /proc/$ROUTER/status)
python3 - "$work" "$N" "$LOSS" "$HOLD_S" "$RATE" "$up" "$busy" "$busy_end" "$t0" "$t1" "$clk" \
  "$r0" "$r1" "$s0" "$s1" "$c0" "$c1" "$p0" "$p1" "$rss_kb" "$hwm_kb" "$threads" "$fds" "$INFO" "$(nproc)" "$MEDIA" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import csv, sys
(work, n, loss, hold, rate, up, busy, busy_end, t0, t1, clk, r0, r1, s0, s1, c0, c1, p0, p1,
 rss, hwm, threads, fds, info, cores, media, loadavg) = sys.argv[1:]
n, loss, wall, clk = int(n), float(loss), float(t1) - float(t0), float(clk)
pct = lambda a, b: 100 * (float(b) - float(a)) / clk / wall
rows = list(csv.reader(open(f"{work}/stats.csv"), delimiter=";"))
head, last = rows[0], rows[-1]
col = lambda name: int(last[head.index(name)])
ok, failed = col("SuccessfulCall(C)"), col("FailedCall(C)")
router = pct(r0, r1)
pps = (float(p1) - float(p0)) / wall
expected = n * 2 * 50 * (1 - loss / 100)
print(f"concurrent={n} loss={loss:g}% hold={hold}s rate={rate}/s info={'on' if info == '1' else 'off'} media={media}: "
      f"all bridged after {up}s "
      f"({busy} busy seats; {busy_end} at window end)")
print(f"calls completed={ok} failed={failed}")
print(f"window {wall:.1f}s: router cpu={router:.1f}% of one core, {router / n:.3f}% per call; "
      f"rss={int(rss) / 1024:.1f} MiB (peak {int(hwm) / 1024:.1f} MiB), {threads} threads, {fds} fds")
print(f"rtp relayed={pps:.0f} packets/s (expected {expected:.0f}: {100 * pps / expected:.1f}%)")
callers, seats = pct(c0, c1), pct(s0, s1)
ticks = [dict(l.split() for l in open(f"{work}/ticks{i}")) for i in (0, 1)]
# Processes alive at both ends: their delta; started during the window: all of theirs.
used = sum(int(v) - int(ticks[0].get(p, 0)) for p, v in ticks[1].items())
machine = 100 * used / clk / wall
print(f"sipp cpu: callers={callers:.1f}% seats={seats:.1f}% of one core")
print(f"machine: {machine:.0f}% of {100 * int(cores)}% ({cores} cores) used by processes, "
      f"{max(0.0, machine - router - callers - seats):.0f}% by others; load average {loadavg}")
PY
