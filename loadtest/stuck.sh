#!/usr/bin/env bash
# Do seats and calls come back after a disturbance? RATE trunk calls/s for SECS s to SEATS
# SIPp seats (hold 0; the shipped plans without greeting and hold audio, as in
# sidebyside.sh, so calls wait unanswered; SIPp callers give up after 10 s and send their
# CANCEL once), the router frozen (SIGSTOP) for FREEZE_S s from FREEZE_AT s (default: the
# middle; 0 s: no freeze). Frozen when the first callers give up (FREEZE_AT=10), their
# CANCELs overflow its socket buffer and are lost: ghosts, the overload case.
# Then every 2 s: the calls the router holds and its seats by state, until it holds none
# and every seat is available again, or WATCH_S s have passed. Run it under the bench lock.
#
#   loadtest/stuck.sh [RATE=200] [SECS=10] [SEATS=100] [FREEZE_S=4] [WATCH_S=120]
#
# ROUTER_BIN runs another build (the one before, to compare); the shipped
# caller_rtp_timeout_s (60 s) applies: CALLER_TIMEOUT_S changes it. [overload] is off unless
# OVERLOAD_SECTION says (loadtest/router.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-200}; SECS=${2:-10}; SEATS=${3:-100}; FREEZE_S=${4:-4}; WATCH_S=${5:-120}
work=$(mktemp -d /tmp/sas-stuck.XXXXXX)
SEAT_SIPP=""; ROUTER=""; CALLER=""
trap 'kill -CONT $ROUTER 2>/dev/null || true; kill $CALLER $SEAT_SIPP $ROUTER 2>/dev/null || true
      wait 2>/dev/null || true; [ "${KEEP_WORK:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"' EXIT
SIP_PORT=25260; HTTP_PORT=28280; SEAT_PORT=25271; REG_PORT=25272; CALLER_PORT=25280

# Overload control off, as in sidebyside.sh: the point is what the router does past it.
export OVERLOAD_SECTION=${OVERLOAD_SECTION:-off}
# shellcheck source=loadtest/plans.sh
. loadtest/plans.sh
plans_without_greeting "$work/dialplans"
sed '/play_pcap_audio/d' tests/sipp/caller.xml > "$work/caller.xml"
N_SEATS=$SEATS DIALPLANS="$work/dialplans"
# shellcheck source=loadtest/router.sh
. loadtest/router.sh
if [ -n "${CALLER_TIMEOUT_S:-}" ]; then
  kill "$ROUTER"; wait "$ROUTER" 2>/dev/null || true
  sed -i "s/caller_rtp_timeout_s = [0-9]*/caller_rtp_timeout_s = $CALLER_TIMEOUT_S/" "$work/config.toml"
  "${ROUTER_BIN:-target/release/sas-router}" -c "$work/config.toml" > "$work/router.log" 2>&1 &
  ROUTER=$!
  for _ in $(seq 50); do curl -sf "127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
fi
sipp 127.0.0.1:$SIP_PORT -sf tests/sipp/seat_answer.xml -i 127.0.0.1 -p $SEAT_PORT -d 0 -nostdin \
  -bg > "$work/seat.pid" 2>/dev/null || true
SEAT_SIPP=$(grep -o '[0-9]\+' "$work/seat.pid" | head -1)
sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p $REG_PORT -inf "$work/seats.csv" \
  -key contact_port $SEAT_PORT -m "$SEATS" -r 200 -nostdin -timeout 30s > /dev/null 2>&1

sample() { # t: seconds since the load began
  local m; m=$(curl -s --max-time 2 "127.0.0.1:$HTTP_PORT/metrics" || true)
  awk -v t="$1" '
    /^sas_live_entries\{table="driver_calls"\}/ {calls = $2}
    /^sas_seats\{role="arm",state=/ {split($1, a, "\""); s[a[4]] = $2}
    END {printf "t=%3ds calls=%s seats:", t, calls + 0
         for (k in s) if (s[k] > 0) printf " %s=%d", k, s[k]; printf "\n"}' <<< "$m"
}

FREEZE_AT=${FREEZE_AT:-$((SECS / 2))}
echo "$RATE calls/s for $SECS s, $SEATS seats, freeze ${FREEZE_S} s at ${FREEZE_AT} s;" \
  "router: ${ROUTER_BIN:-target/release/sas-router}"
start=$(date +%s)
( cd "$work" && sipp 127.0.0.1:$SIP_PORT -sf "$work/caller.xml" -i 127.0.0.1 -p $CALLER_PORT -s 15 \
    -m $((RATE * SECS)) -r "$RATE" -d 0 -l 20000 -nostdin -recv_timeout 10000 \
    -timeout $((SECS + 40))s > sipp.out 2>&1 ) &
CALLER=$!
if [ "$FREEZE_S" -gt 0 ]; then
  sleep "$FREEZE_AT"
  kill -STOP "$ROUTER"; sleep "$FREEZE_S"; kill -CONT "$ROUTER"
  echo "frozen ${FREEZE_S} s"
fi
back=""
while [ $(($(date +%s) - start)) -lt "$WATCH_S" ]; do
  line=$(sample $(($(date +%s) - start)))
  echo "$line"
  if ! kill -0 "$CALLER" 2>/dev/null && [[ "$line" == *"calls=0 seats: available=$SEATS" ]]; then
    back=$(($(date +%s) - start)); break
  fi
  sleep 2
done
wait "$CALLER" 2>/dev/null || true
grep -E "Successful call|Failed call" "$work/sipp.out" | tail -2 | tr -s ' ' || true
echo "caller_lost: $(grep -c 'caller lost' "$work/router.log" || true)," \
  "no ACK for 2xx: $(grep -c 'no ACK for the 2xx' "$work/router.log" || true)"
if [ -n "$back" ]; then
  echo "RECOVERED: no call held, all $SEATS seats available, ${back} s after the load began"
else
  echo "NOT RECOVERED within ${WATCH_S} s: $(sample "$WATCH_S")"
fi
