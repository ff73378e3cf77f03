#!/usr/bin/env bash
# Media side by side: the same G.711 load from the same generator (loadtest/mediagen) through
# sas-router and through rtpengine, one after the other, at each concurrency of a ladder.
#
#   loadtest/media_sidebyside.sh [CALLS="500 1000 2000"] [HOLD_S=15]
#   env: RATE=200 (calls set up per second), WARM_S=3 (start of the hold left out of the
#        window), ROUTER_BIN (default: this tree's release build; e.g.
#        /work/bench/sas-router-before), RTPENGINE_THREADS (default: rtpengine's, one per core),
#        ONLY=router|rtpengine (one relay), KEEP=1 (keep the work directories),
#        NICE=-10 (the relays, both alike, run at this nice level, so other
#        engineers' builds on the shared cores disturb the measurement less; 0 to leave it),
#        GEN_RT=1 (the generator runs SCHED_FIFO priority 1, `chrt -f 1`, so its 20 ms clock
#        holds on a loaded machine: at nice -10 its threads waited 1-3 s of a 15 s hold in the
#        run queue behind builds and skipped sub-ticks; 0: nice like the relays),
#        KERNEL_RELAY=1 (the router with [media] kernel_relay = true: root), RECORDING=0
#        (the router without recording); the table's row says which
#   MEDIA_RESULTS=FILE keeps the generator's RESULT lines there (loadtest/sidebyside.sh)
#
# sas-router runs the shipped configuration and dial plans (loadtest/router.sh: every call
# recorded; the trunk dials 15, the router rings one of N registered seats). rtpengine 10.5 (Debian
# `rtpengine-daemon`) runs as our own process in userspace (--table=-1: no kernel module), on
# its own ports, without recording. Per rung and relay: the generator registers N seats (router)
# or offers/answers N calls over ng (rtpengine), streams both ways for HOLD_S seconds, and
# measures over the steady window the relay's CPU (utime+stime from /proc), the packets it
# relayed, and its RSS (per concurrent call: at the window's end minus before the calls, and
# averaged over the window, sampled every 250 ms: whether the sample at the end is
# typical of the window).
#
# Each call records G.711 stereo WAV, ~16 kB/s: 2,000 calls for 15 s write ~0.5 GB, removed
# with the rung's work directory. Both relays get the RTP range 10000-32767 (below the
# kernel's ephemeral ports: ~3,790 calls at the router's six ports a call; the shipped
# 20000-29999 refused calls past ~1,660 with 503), and the file descriptor limit is raised to
# the hard limit (the rung stops if that is short of ~5 a call). Checked per rung: the relay
# answered before the calls and is still alive after them (a crash is reported with its
# log's tail), its log's errors and panics are counted, and the generator's set-up failures
# (503s, timeouts) and its own clock (a rung where the generator fell behind is flagged
# "BEHIND": it measured the generator, not the relay) are in the table.
# Run it under the shared lock, a rung at a time on a shared machine:
#   flock /tmp/sas-bench.lock loadtest/media_sidebyside.sh 2000 15
set -euo pipefail
cd "$(dirname "$0")/.."
LADDER=${1:-"500 1000 2000"}; HOLD_S=${2:-15}
RATE=${RATE:-200}; WARM_S=${WARM_S:-3}; ONLY=${ONLY:-}; NICE=${NICE:--10}
if [ "${GEN_RT:-1}" = 1 ]; then GEN_WRAP=(chrt -f 1); else GEN_WRAP=(nice -n "$NICE"); fi

if [ "$ONLY" != router ] && ! command -v rtpengine >/dev/null; then
  echo "rtpengine missing: apt-get install rtpengine-daemon (or ONLY=router)" >&2; exit 1
fi
if [ -z "${ROUTER_BIN:-}" ]; then
  cargo build --release --quiet --bin sas-router --example mediagen
else
  cargo build --release --quiet --example mediagen
fi
GEN="${CARGO_TARGET_DIR:-target}/release/examples/mediagen"
# Every call: 2 sockets a leg (RTP, RTCP) in the relay, a recording file, the router's
# configuration files.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for n in $LADDER; do
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((5 * n + 1000)) ]; then
    echo "ulimit -n is $(ulimit -n): too few file descriptors for $n calls" >&2; exit 1
  fi
done
RTP_MIN=10000; RTP_MAX=32767

# Overload control off, as in sidebyside.sh: this measures the relay, not admission.
export OVERLOAD_SECTION=${OVERLOAD_SECTION:-off}
# Below the relays' RTP range.
SIP_PORT=9860; HTTP_PORT=9880; NG_PORT=9862; GEN_PORT=9600
results=$(mktemp /tmp/sas-media-sbs.XXXXXX)
RELAY=""
trap 'kill -9 $RELAY 2>/dev/null || true; wait 2>/dev/null || true' EXIT

check_relay() { # NAME PID LOG: fails (and tells) if the relay died; counts its log's errors
  local errors
  errors=$(grep -cE 'panicked|\bERROR\b|\bERR\b|\bCRIT' "$3" || true)
  if ! kill -0 "$2" 2>/dev/null; then
    echo "  $1 DIED during the rung; its log ends:" >&2; tail -20 "$3" | sed 's/^/    /' >&2
    return 1
  fi
  if [ "$errors" -gt 0 ]; then
    echo "  $1 logged $errors errors or panics; the first:"; grep -E 'panicked|\bERROR\b|\bERR\b|\bCRIT' "$3" | head -3 | sed 's/^/    /'
  fi
  echo "relay_errors=$errors"
}

stop() { # PID: SIGTERM, SIGKILL after 5 s (the router drains calls for up to [shutdown] drain_s)
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

run_router() { # N
  local n=$1 work
  work=$(mktemp -d /tmp/sas-media-router.XXXXXX)
  N_SEATS=$n; ROUTER_WRAP="nice -n $NICE"; RTP_PORT_MIN=$RTP_MIN; RTP_PORT_MAX=$RTP_MAX
  # shellcheck source=loadtest/router.sh
  . loadtest/router.sh
  RELAY=$ROUTER
  if ! curl -sf "127.0.0.1:$HTTP_PORT/healthz" >/dev/null; then
    echo "router rung $n: the router did not start; its log ends:" >&2; tail -20 "$work/router.log" >&2
    stop "$ROUTER"; RELAY=""; return
  fi
  "${GEN_WRAP[@]}" "$GEN" router --router 127.0.0.1:$SIP_PORT --calls "$n" --hold "$HOLD_S" --warm-up "$WARM_S" \
    --rate "$RATE" --rtp-port $GEN_PORT --relay-pid "$ROUTER" --per-call "$work/per_call.tsv" \
    2> "$work/gen.err" > "$work/gen.out" \
    || { echo "router rung $n failed:" >&2; grep -v '^ ' "$work/gen.err" | tail -5 >&2; tail -5 "$work/router.log" >&2; }
  checked=$(check_relay sas-router "$ROUTER" "$work/router.log") || checked="relay_errors=DIED"
  grep '^RESULT' "$work/gen.out" | sed "s/\$/ ${checked##*$'\n'}/" >> "$results" || true
  echo "$checked" | grep -v '^relay_errors=' || true
  stop "$ROUTER"; RELAY=""
  sed -n '1,/^RESULT/p' "$work/gen.out" | grep -v '^RESULT' | sed 's/^/  /'
  sed 's/^/  /' "$work/gen.err"
  if [ "${KEEP:-0}" = 1 ]; then echo "  work: $work"; else rm -rf "$work"; fi
}

run_rtpengine() { # N
  local n=$1 work threads=()
  work=$(mktemp -d /tmp/sas-media-rtpe.XXXXXX)
  [ -n "${RTPENGINE_THREADS:-}" ] && threads=(--num-threads="$RTPENGINE_THREADS")
  # Userspace only (--table=-1), no config file, no Redis, no recording; ports outside the
  # router's range.
  nice -n "$NICE" rtpengine --config-file=none --foreground --log-stderr --log-level=4 --table=-1 \
    --interface=127.0.0.1 --listen-ng=127.0.0.1:$NG_PORT --port-min=$RTP_MIN --port-max=$RTP_MAX \
    "${threads[@]}" > "$work/rtpengine.log" 2>&1 &
  RELAY=$!
  sleep 1
  if ! kill -0 "$RELAY" 2>/dev/null; then
    echo "rtpengine rung $n: rtpengine did not start; its log ends:" >&2; tail -20 "$work/rtpengine.log" >&2
    RELAY=""; return
  fi
  "${GEN_WRAP[@]}" "$GEN" rtpengine --ng 127.0.0.1:$NG_PORT --calls "$n" --hold "$HOLD_S" --warm-up "$WARM_S" \
    --rate "$RATE" --rtp-port $GEN_PORT --relay-pid "$RELAY" --per-call "$work/per_call.tsv" \
    2> "$work/gen.err" > "$work/gen.out" \
    || { echo "rtpengine rung $n failed:" >&2; grep -v '^ ' "$work/gen.err" | tail -5 >&2; tail -5 "$work/rtpengine.log" >&2; }
  checked=$(check_relay rtpengine "$RELAY" "$work/rtpengine.log") || checked="relay_errors=DIED"
  grep '^RESULT' "$work/gen.out" | sed "s/\$/ ${checked##*$'\n'}/" >> "$results" || true
  echo "$checked" | grep -v '^relay_errors=' || true
  stop "$RELAY"; RELAY=""
  sed -n '1,/^RESULT/p' "$work/gen.out" | grep -v '^RESULT' | sed 's/^/  /'
  sed 's/^/  /' "$work/gen.err"
  if [ "${KEEP:-0}" = 1 ]; then echo "  work: $work"; else rm -rf "$work"; fi
}

for n in $LADDER; do
  if [ "$ONLY" != rtpengine ]; then echo "== sas-router, $n calls"; run_router "$n"; fi
  if [ "$ONLY" != router ]; then echo "== rtpengine, $n calls"; run_rtpengine "$n"; fi
done

echo
echo "hold ${HOLD_S}s, window $((HOLD_S - WARM_S))s, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import os, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    runs[(int(kv["calls"]), kv["mode"])] = kv
print("| calls | relay | bridged (503 / timeouts) | packets/s | relay CPU | packets per CPU-second | router / rtpengine | loss | jitter mean / max | RSS per call (end / window mean) | relay log errors | generator: CPU, lateness p99, skipped |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for calls in sorted({c for c, _ in runs}):
    for mode in ("router", "rtpengine"):
        r = runs.get((calls, mode))
        if not r:
            continue
        other = runs.get((calls, "rtpengine"))
        ratio = ""
        if mode == "router" and other and "pkts_per_cpu_s" in r and "pkts_per_cpu_s" in other:
            ratio = f"{float(r['pkts_per_cpu_s']) / max(1.0, float(other['pkts_per_cpu_s'])):.2f}x"
        kernel = " kernel relay" if os.environ.get("KERNEL_RELAY") == "1" else ""
        recording = "recording off" if os.environ.get("RECORDING") == "0" else "recording on"
        name = f"sas-router{kernel} ({recording})" if mode == "router" else "rtpengine userspace (no recording)"
        gen = (f"{r['gen_cpu_pct']} %, {r['gen_late_p99_ms']} ms, {r['skipped_ticks']}"
               + (" **BEHIND: measured the generator**" if r["gen_behind"] == "1" else " ok"))
        print(f"| {calls} | {name} | {r['bridged']} ({r['refused_503']} / {r['timeouts']}) | {r['pps']} "
              f"| {r.get('relay_cpu_pct', '?')} % "
              f"| {r.get('pkts_per_cpu_s', '?')} | {ratio} | {float(r['loss_pct']):.3f} % ({r['lost']}) "
              f"| {r['jitter_ms']} / {r['jitter_max_ms']} ms | {r.get('kib_per_call', '?')} / {r.get('kib_per_call_mean', '?')} KiB "
              f"| {r.get('relay_errors', '?')} | {gen} |")
PY
# MEDIA_RESULTS=FILE keeps the RESULT lines (loadtest/sidebyside.sh judges the targets on them).
[ -z "${MEDIA_RESULTS:-}" ] || cp "$results" "$MEDIA_RESULTS"
rm -f "$results"
