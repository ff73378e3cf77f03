#!/usr/bin/env bash
# WebRTC leg load: CALLS trunk calls held HOLD_S seconds through a release router, each
# answered by a seat whose phone registered over SIP WebSocket and speaks WebRTC
# (loadtest/webrtc_phones: one `webrtc` peer connection per call in a separate process,
# ICE on loopback, DTLS-SRTP). The router bridges each caller's plain RTP (SIPp, G.711 from
# a pcap, 50 packets/s) to its phone (a 400 Hz G.711 tone, 50 packets/s). Once every call is
# bridged it measures over a steady-state window the router's CPU (utime+stime from /proc),
# RSS, and RTP relayed each way (sas_rtp_packets_relayed_total); at the end it checks the
# phones' counts against the router's: what they sent against what it relayed to the
# callers, what it relayed to them against what they received.
#
#   loadtest/webrtc.sh [CALLS=20] [HOLD_S=30]
#   env: RATE=10 (calls/s while ramping up), WINDOW_S=20 (longest measurement window),
#        MEDIA=pcap|stream (the callers' audio, as in loadtest/media.sh: pcap plays with
#        SIPp's play_pcap_audio, whose raw sockets load every loopback sender, the router
#        included, as calls x packets/s; stream uses SIPp's rtp_stream)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}; HOLD_S=${2:-30}
RATE=${RATE:-10}; WINDOW_S=${WINDOW_S:-20}; MEDIA=${MEDIA:-pcap}
case "$MEDIA" in pcap | stream) ;; *) echo "MEDIA is pcap or stream" >&2; exit 1 ;; esac
command -v sipp >/dev/null || { echo "SIPp missing: apt-get install sip-tester" >&2; exit 1; }
# Router: 4 UDP sockets per call, a WebRTC socket and a WebSocket per phone; the phones
# as many again.
need=$((N * 8 + 1024)); hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then ulimit -n "$hard"; else ulimit -n "$need"; fi

cargo build --release --quiet
cargo build --release --quiet --example webrtc_phones
work=$(mktemp -d /tmp/sas-webrtc-load.XXXXXX)
# The caller's pcap (A-law 1000 Hz tone, a little longer than a call) and raw tone for
# rtp_stream, from the test tooling as in media.sh.
MEDIA_PCAP_DIR="$work" MEDIA_PCAP_SECONDS=$((HOLD_S + 5)) \
  cargo test --release --quiet --test it media_tooling::write_loadtest_pcaps -- --ignored --exact --nocapture \
  | grep caller.pcap > /dev/null || { echo "pcap generation failed" >&2; exit 1; }

PHONES=""
trap 'kill $(jobs -p) $PHONES 2>/dev/null || true; wait 2>/dev/null || true' EXIT
# Outside the router's RTP range (20000-29999) and the kernel's ephemeral ports.
SIP_PORT=14060; HTTP_PORT=14080; WS_PORT=14066; CALLER_PORT=14070; CALLER_MEDIA=14100
N_SEATS=$N
# shellcheck source=loadtest/router.sh
. loadtest/router.sh

metric_sum() { # sum of the samples of a metric whose line matches $1
  curl -sf "127.0.0.1:$HTTP_PORT/metrics" | awk -v re="$1" '$0 ~ re {s += $NF} END {print s + 0}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
all_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '{print $1, $14 + $15}'; }
wait_for() { # seconds, what, test command...: polls the test every 0.5 s
  local deadline=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $what" >&2; return 1; }
    sleep 0.5
  done
}
seats_in() { [ "$(metric_sum "^sas_seats\\{.*state=\"$1\"")" -ge "$N" ]; }
phones_gone() { ! kill -0 "$PHONES" 2>/dev/null; }

"${CARGO_TARGET_DIR:-target}/release/examples/webrtc_phones" --ws "ws://127.0.0.1:$WS_PORT/" \
  --phones "$N" --calls 1 --max-seconds $((HOLD_S + N / RATE + 120)) \
  > "$work/phones.out" 2> "$work/phones.err" &
PHONES=$!
wait_for 30 "$N phones registered" seats_in available
echo "registered $N WebRTC phones"

# The media caller without its INFO; with rtp_stream instead of the pcap if MEDIA=stream.
python3 - "$work" "$MEDIA" <<'PY'
import re, sys
work, media = sys.argv[1:]
text = open("tests/sipp/caller_media.xml").read()
text, n = re.subn(r'  <send retrans="500">\s*<!\[CDATA\[\s*INFO .*?</send>\s*<recv response="200"/>\n',
                  '', text, flags=re.S)
assert n == 1, "INFO block not found"
if media == "stream":
    text, n = re.subn(r'<exec play_pcap_audio="\[pcap\]"/>', f'<exec rtp_stream="{work}/caller.alaw,-1,8"/>', text)
    assert n == 1, "play_pcap_audio not found"
open(f"{work}/caller_media.xml", "w").write(text)
PY

half=$((HOLD_S * 500))
start=$(date +%s.%N)
( cd "$work" && exec sipp 127.0.0.1:$SIP_PORT -key pcap "$work/caller.pcap" -key rtp_port $CALLER_MEDIA \
    -sf "$work/caller_media.xml" -set tail_ms $half -i 127.0.0.1 -p $CALLER_PORT \
    -mp $CALLER_MEDIA -s 15 -m "$N" -r "$RATE" -l "$N" -d $half -nostdin -trace_stat -fd 1 \
    -stf stats.csv -trace_err -timeout $((HOLD_S + N / RATE + 120))s > sipp.out 2>&1 ) &
CALLER_SIPP=$!

# Steady state: every call bridged (N busy seats).
wait_for $((N / RATE + 60)) "every call bridged" seats_in busy || true
up=$(python3 -c "import time; print(round(time.time() - $start, 1))")
busy=$(metric_sum '^sas_seats\{.*state="busy"')
sleep 2
# The window ends 3 s before the first call hangs up.
window=$(python3 -c "print(max(2, min($WINDOW_S, $HOLD_S - ($up + 2) - 3)))")
clk=$(getconf CLK_TCK)
relayed() { echo "$(metric_sum 'relayed_total\{direction="caller_to_seat"') $(metric_sum 'relayed_total\{direction="seat_to_caller"')"; }
r0=$(cpu_ticks $ROUTER); d0=$(cpu_ticks $PHONES); c0=$(cpu_ticks $CALLER_SIPP)
p0=$(relayed); all_ticks > "$work/ticks0"; t0=$(date +%s.%N)
sleep "$window"
r1=$(cpu_ticks $ROUTER); d1=$(cpu_ticks $PHONES); c1=$(cpu_ticks $CALLER_SIPP)
p1=$(relayed); all_ticks > "$work/ticks1"; t1=$(date +%s.%N)
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$ROUTER/status)
busy_end=$(metric_sum '^sas_seats\{.*state="busy"')

wait $CALLER_SIPP || true
# The phones stop once each has had its call hung up.
wait_for 30 "the phones to stop" phones_gone || kill "$PHONES"
wait $PHONES 2>/dev/null || true
sleep 1
p_end=$(relayed)
# Sequence gaps the router saw in what reached it, per leg.
lost="$(metric_sum 'lost_total\{leg="caller"') $(metric_sum 'lost_total\{leg="seat"')"
hwm_kb=$(awk '/VmHWM/ {print $2}' /proc/$ROUTER/status)
warnings=$(grep -c 'WARN' "$work/router.log" || true)
python3 - "$work" "$N" "$HOLD_S" "$RATE" "$MEDIA" "$up" "$busy" "$busy_end" "$t0" "$t1" "$clk" \
  "$r0" "$r1" "$d0" "$d1" "$c0" "$c1" "$p0" "$p1" "$p_end" "$lost" "$rss_kb" "$hwm_kb" "$warnings" \
  "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import csv, re, sys
(work, n, hold, rate, media, up, busy, busy_end, t0, t1, clk, r0, r1, d0, d1, c0, c1, p0, p1,
 p_end, lost, rss, hwm, warnings, cores, loadavg) = sys.argv[1:]
n, wall, clk = int(n), float(t1) - float(t0), float(clk)
pct = lambda a, b: 100 * (float(b) - float(a)) / clk / wall
rows = list(csv.reader(open(f"{work}/stats.csv"), delimiter=";"))
col = lambda name: int(rows[-1][rows[0].index(name)])
total = next(l for l in open(f"{work}/phones.out") if l.startswith("total"))
phones = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", total)}
router = pct(r0, r1)
(to_seat0, to_caller0), (to_seat1, to_caller1) = (map(float, p.split()) for p in (p0, p1))
to_seat_end, to_caller_end = map(float, p_end.split())
expected = n * 50
print(f"legs={n} hold={hold}s rate={rate}/s media={media}: all bridged after {up}s "
      f"({busy} busy seats; {busy_end} at window end)")
print(f"callers: completed={col('SuccessfulCall(C)')} failed={col('FailedCall(C)')}; phones: "
      f"registered={phones['registered']} answered={phones['answered']} "
      f"connected={phones['connected']} ended={phones['ended']} refused={phones['refused']}")
print(f"window {wall:.1f}s: router cpu={router:.1f}% of one core, {router / n:.2f}% per WebRTC leg; "
      f"rss={int(rss) / 1024:.1f} MiB (peak {int(hwm) / 1024:.1f} MiB)")
print(f"relayed packets/s: caller->phone {(to_seat1 - to_seat0) / wall:.0f}, "
      f"phone->caller {(to_caller1 - to_caller0) / wall:.0f} (expected {expected} each way)")
print(f"whole calls: phones received {phones['received']} of {to_seat_end:.0f} relayed to them "
      f"({100 * phones['received'] / max(1, to_seat_end):.2f}%, {phones['gaps']} missing mid-call); router relayed {to_caller_end:.0f} "
      f"of {phones['sent']} the phones sent ({100 * to_caller_end / max(1, phones['sent']):.2f}%)")
lost_caller, lost_phone = lost.split()
print(f"missing mid-call as the router saw it: from callers {lost_caller}, from phones {lost_phone}")
ticks = [dict(l.split() for l in open(f"{work}/ticks{i}")) for i in (0, 1)]
used = sum(int(v) - int(ticks[0].get(p, 0)) for p, v in ticks[1].items())
machine = 100 * used / clk / wall
phones_cpu, callers = pct(d0, d1), pct(c0, c1)
print(f"other cpu: phones={phones_cpu:.1f}% sipp callers={callers:.1f}% of one core; machine "
      f"{machine:.0f}% of {100 * int(cores)}% ({max(0.0, machine - router - phones_cpu - callers):.0f}% "
      f"by others), load average {loadavg}; router log: {warnings} warnings")
PY
