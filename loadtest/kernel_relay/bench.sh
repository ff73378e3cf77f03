#!/usr/bin/env bash
# Kernel relay against rtpengine's userspace relay, in one sitting: the same G.711 load from
# loadtest/mediagen (rtpengine mode: ng offer/answer/delete) through, at each rung,
#   direct   no relay: each endpoint sends straight to its peer (the baseline),
#   kernel   loadtest/kernel_relay (eBPF tc relay + ring-buffer recording tap to files),
#   rtpengine 10.5 userspace (--table=-1, no recording), as in loadtest/media_sidebyside.sh.
#
#   flock /tmp/sas-bench.lock loadtest/kernel_relay/bench.sh [CALLS="500 1000 2000"] [HOLD_S=15]
#   env: ONLY="direct kernel rtpengine" (the runs, in this order), RATE=200, WARM_S=3,
#        NICE=-10 (the relays), GEN_RT=1 (generator SCHED_FIFO 1, as media_sidebyside.sh),
#        PASS=1 (kernel: hand rewritten packets back to the stack instead of redirecting them
#        out of the interface again), RECORD=0 (kernel: drain the tap without writing files)
#
# CPU per packet, honestly: on loopback a packet's softirq (the kernel relay's BPF program
# included) runs in the context of the process that sent it, so a relay's process CPU is not
# its cost. Each run reports `all` = generator + relay process + ksoftirqd CPU over the
# window (per process, so other work on the shared machine is not counted); a relay's cost
# is its `all` minus the direct baseline's at the same rung (the same packets sent and
# received, minus the relaying). Run as root (bpf(), tc). Keep each locked run under ~3 min:
# one rung at a time at 2,000 calls.
set -euo pipefail
cd "$(dirname "$0")/../.."
LADDER=${1:-"500 1000 2000"}; HOLD_S=${2:-15}
RATE=${RATE:-200}; WARM_S=${WARM_S:-3}; NICE=${NICE:--10}
ONLY=${ONLY:-"direct kernel rtpengine"}
if [ "${GEN_RT:-1}" = 1 ]; then GEN_WRAP=(chrt -f 1); else GEN_WRAP=(nice -n "$NICE"); fi
cargo build --release --quiet --example mediagen
cargo build --release --quiet --manifest-path loadtest/kernel_relay/Cargo.toml
GEN="${CARGO_TARGET_DIR:-target}/release/examples/mediagen"
KR=loadtest/kernel_relay/target/release/kernel-relay
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NG_PORT=9862; GEN_PORT=9600; RTP_MIN=10000; RTP_MAX=32767
results=$(mktemp /tmp/sas-krelay.XXXXXX)
RELAY=""
trap 'kill -9 $RELAY 2>/dev/null || true; wait 2>/dev/null || true' EXIT

run() { # NAME N: starts the relay NAME, drives N calls through it, appends its RESULT line
  local name=$1 n=$2 work extra=()
  work=$(mktemp -d /tmp/sas-krelay-run.XXXXXX)
  case $name in
    direct) "$KR" --mode direct --ng 127.0.0.1:$NG_PORT > "$work/relay.out" 2> "$work/relay.log" & ;;
    kernel)
      [ "${PASS:-0}" = 1 ] && extra+=(--no-redirect)
      [ "${RECORD:-1}" = 1 ] && extra+=(--record "$work/rec")
      nice -n "$NICE" "$KR" --ng 127.0.0.1:$NG_PORT --ports $RTP_MIN-$RTP_MAX "${extra[@]}" \
        > "$work/relay.out" 2> "$work/relay.log" & ;;
    rtpengine)
      nice -n "$NICE" rtpengine --config-file=none --foreground --log-stderr --log-level=4 --table=-1 \
        --interface=127.0.0.1 --listen-ng=127.0.0.1:$NG_PORT --port-min=$RTP_MIN --port-max=$RTP_MAX \
        > "$work/relay.out" 2> "$work/relay.log" & ;;
  esac
  RELAY=$!
  sleep 1
  if ! kill -0 "$RELAY" 2>/dev/null; then
    echo "$name rung $n: the relay did not start:" >&2; tail -20 "$work/relay.log" >&2; RELAY=""; return
  fi
  "${GEN_WRAP[@]}" "$GEN" rtpengine --ng 127.0.0.1:$NG_PORT --calls "$n" --hold "$HOLD_S" \
    --warm-up "$WARM_S" --rate "$RATE" --rtp-port $GEN_PORT --relay-pid "$RELAY" \
    2> "$work/gen.err" > "$work/gen.out" || { echo "$name rung $n failed:" >&2; tail -5 "$work/gen.err" >&2; }
  kill "$RELAY" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$RELAY" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$RELAY" 2>/dev/null || true; wait "$RELAY" 2>/dev/null || true; RELAY=""
  local krelay rec
  krelay=$(grep '^KRELAY' "$work/relay.out" | cut -d' ' -f2- || true)
  rec=$(du -sk "$work/rec" 2>/dev/null | cut -f1 || true)
  grep '^RESULT' "$work/gen.out" | sed "s/^RESULT/RESULT relay=$name $krelay rec_kib=${rec:-0}/" >> "$results" || true
  sed -n '1,/^RESULT/p' "$work/gen.out" | grep -v '^RESULT' | sed "s/^/  [$name $n] /"
  [ -n "$krelay" ] && echo "  [$name $n] kernel: $krelay, recorded ${rec:-0} KiB"
  if [ "${KEEP:-0}" = 1 ]; then echo "  work: $work"; else rm -rf "$work"; fi
}

for n in $LADDER; do
  for name in $ONLY; do echo "== $name, $n calls"; run "$name" "$n"; done
done
echo
echo "hold ${HOLD_S}s, window $((HOLD_S - WARM_S))s, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    runs[(int(kv["calls"]), kv["relay"])] = kv
print("| calls | relay | packets/s | loss | jitter mean / max | relay process CPU | gen + relay + ksoftirqd CPU | µs per packet, all | µs per packet, relaying (minus direct) | packets per CPU-second of relaying | vs rtpengine | recorder: payloads (drops) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for calls in sorted({c for c, _ in runs}):
    base = runs.get((calls, "direct"))
    def marginal(r):
        if not base:
            return None
        return float(r["all_us_per_pkt"]) - float(base["all_us_per_pkt"])
    rtpe = runs.get((calls, "rtpengine"))
    for name in ("direct", "kernel", "rtpengine"):
        r = runs.get((calls, name))
        if not r:
            continue
        m = marginal(r) if name != "direct" else None
        per_cpu_s = f"{1e6 / m:,.0f}" if m and m > 0 else ("—" if name == "direct" else "n/a")
        ratio = ""
        if name == "kernel" and rtpe and m and m > 0 and marginal(rtpe):
            ratio = f"{marginal(rtpe) / m:.1f}x"
        rec = (f"{r.get('tap_records', '?')} ({r.get('tap_drops', '?')}), {int(r.get('rec_kib', 0)) // 1024} MiB"
               if name == "kernel" else "")
        behind = " **gen BEHIND**" if r["gen_behind"] == "1" else ""
        print(f"| {calls} | {name}{behind} | {r['pps']} | {float(r['loss_pct']):.3f} % ({r['lost']}) "
              f"| {r['jitter_ms']} / {r['jitter_max_ms']} ms | {r.get('relay_cpu_pct', '?')} % "
              f"| {r['all_cpu_pct']} % | {float(r['all_us_per_pkt']):.2f} "
              f"| {'' if m is None else f'{m:.2f}'} | {per_cpu_s} | {ratio} | {rec} |")
PY
rm -f "$results"
