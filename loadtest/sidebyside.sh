#!/usr/bin/env bash
# Kamailio and sas-router side by side, same machine, same SIPp scenarios, one run:
#
#   loadtest/sidebyside.sh [RATES="200 500 1000 1500 2000"] [SECONDS=5] [SEATS=100]
#
# Each target in turn gets SEATS digest-authenticated seats (loadtest/register_many.xml,
# MD5, realm sas-router) whose Contacts all point at one auto-answer SIPp, then a ladder of
# trunk calls to the 15 at each rate for SECONDS (hold 0, signalling only: INVITE → seat →
# 180/200 → ACK → BYE). Kamailio 5.6 (Debian) is registrar + proxy: auth_db on a db_text
# subscriber table, usrloc in memory, round robin over the seats, record-routed. The router
# runs the shipped configuration (recording on) with the samu plan's greeting, hold music
# and reassurance left out, so the seat's answer is the caller's 200 there too, and with
# overload limits off (OVERLOAD_SECTION overrides). Per rate and target it prints completed
# and failed calls, CPU per call (utime+stime of every process of the target, from
# /proc/PID/stat), INVITE→180 and INVITE→200 p99 (SIPp, whole ms); then the highest rate
# of the ladder with < 0.1 % failed for each, and the ratios. The machine is shared: read
# ratios, not absolute figures. ROUTER_BIN runs another build.
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${1:-"200 500 1000 1500 2000"}; SECS=${2:-5}; SEATS=${3:-100}
command -v sipp >/dev/null || { echo "SIPp missing: apt-get install sip-tester" >&2; exit 1; }
command -v kamailio >/dev/null || { echo "Kamailio missing: apt-get install kamailio" >&2; exit 1; }
[ "$SEATS" -le 100 ] || { echo "at most 100 seats (load0000…load0099)" >&2; exit 1; }
[ -n "${ROUTER_BIN:-}" ] || cargo build --release --quiet

work=$(mktemp -d /tmp/sas-sbs.XXXXXX)
SEAT_SIPP=""; TARGET=""
stop() {
  [ -z "$SEAT_SIPP" ] || kill "$SEAT_SIPP" 2>/dev/null || true
  [ -z "$TARGET" ] || { kill "$TARGET" 2>/dev/null || true; wait "$TARGET" 2>/dev/null || true; }
  SEAT_SIPP=""; TARGET=""
}
trap 'stop; rm -rf "$work"' EXIT
SIP_PORT=25160; HTTP_PORT=28180; SEAT_PORT=25171; REG_PORT=25172; CALLER_PORT=25180
clk=$(getconf CLK_TCK)
sed '/play_pcap_audio/d' tests/sipp/caller.xml > "$work/caller.xml"
export OVERLOAD_SECTION=${OVERLOAD_SECTION:-"max_calls = 0;max_call_rate = 0;max_queue_delay_ms = 0"}

# Seats (the router's loadtest/router.sh writes the same CSV) and Kamailio's subscribers.
python3 - "$work" "$SEATS" <<'PY'
import hashlib, sys, os
work, seats = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{work}/kam/db", exist_ok=True)
csv, rows = ["SEQUENTIAL"], []
for i in range(seats):
    u = f"load{i:04d}"
    ha1 = hashlib.md5(f"{u}:sas-router:load-pw".encode()).hexdigest()
    ha1b = hashlib.md5(f"{u}@127.0.0.1:sas-router:load-pw".encode()).hexdigest()
    csv.append(f"{u};[authentication username={u} password=load-pw]")
    rows.append(f"{i + 1}:{u}:127.0.0.1:load-pw:{ha1}:{ha1b}")
open(f"{work}/kam_seats.csv", "w").write("\n".join(csv) + "\n")
open(f"{work}/kam/db/version", "w").write("table_name(str) table_version(int)\nsubscriber:7\n")
open(f"{work}/kam/db/subscriber", "w").write(
    "id(int,auto) username(str) domain(str,null) password(str) ha1(str) ha1b(str)\n"
    + "\n".join(rows) + "\n")
PY
cat > "$work/kam/kamailio.cfg" <<EOF
#!KAMAILIO
debug=1
log_stderror=yes
children=2
auto_aliases=no
dns=no
rev_dns=no
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "db_text.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("usrloc", "db_mode", 0)
modparam("auth_db", "db_url", "text://$work/kam/db")
modparam("auth_db", "calculate_ha1", 0)
modparam("auth_db", "password_column", "ha1")
modparam("auth_db", "use_domain", 0)
modparam("auth_db", "load_credentials", "")
modparam("pv", "shvset", "next=i:0")
modparam("rr", "enable_full_lr", 1)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	if (has_totag()) {
		if (loose_route()) {
			t_relay();
		}
		exit;
	}
	t_check_trans();
	if (is_method("REGISTER")) {
		if (!auth_check("sas-router", "subscriber", "1")) {
			auth_challenge("sas-router", "0");
			exit;
		}
		consume_credentials();
		if (!save("location")) {
			sl_reply_error();
		}
		exit;
	}
	if (!is_method("INVITE")) {
		sl_send_reply("405", "Method Not Allowed");
		exit;
	}
	# The trunk's INVITE: the next seat, round robin.
	\$var(i) = \$shv(next);
	\$shv(next) = (\$var(i) + 1) mod $SEATS;
	if (\$var(i) < 10) {
		\$var(u) = "load000" + \$var(i);
	} else {
		\$var(u) = "load00" + \$var(i);
	}
	\$ru = "sip:" + \$var(u) + "@127.0.0.1";
	if (!lookup("location")) {
		sl_send_reply("480", "Seat Not Registered");
		exit;
	}
	record_route();
	t_relay();
}
EOF

seats_up() { # CSV
  sipp 127.0.0.1:$SIP_PORT -sf tests/sipp/seat_answer.xml -i 127.0.0.1 -p $SEAT_PORT -d 0 -nostdin \
    -bg > "$work/seat.pid" 2>/dev/null || true
  SEAT_SIPP=$(grep -o '[0-9]\+' "$work/seat.pid" | head -1)
  sipp 127.0.0.1:$SIP_PORT -sf loadtest/register_many.xml -i 127.0.0.1 -p $REG_PORT -inf "$1" \
    -key contact_port $SEAT_PORT -m "$SEATS" -r 200 -nostdin -timeout 30s > /dev/null 2>&1 \
    || { echo "seats did not all register" >&2; exit 1; }
}

cpu_ticks() { # PID: its and its children's utime+stime
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

ladder() { # NAME
  local rate calls c0 c1 dir
  for rate in $RATES; do
    calls=$((rate * SECS)); dir="$work/$1-$rate"; mkdir -p "$dir"
    c0=$(cpu_ticks "$TARGET")
    ( cd "$dir" && sipp 127.0.0.1:$SIP_PORT -sf "$work/caller.xml" -i 127.0.0.1 -p $CALLER_PORT \
        -s 15 -m "$calls" -r "$rate" -d 0 -l 20000 -nostdin -trace_stat -trace_rtt -rtt_freq 1 \
        -stf stats.csv -timeout $((SECS + 40))s > sipp.out 2>&1 ) || true
    c1=$(cpu_ticks "$TARGET")
    echo "$1 $rate $dir $c0 $c1" >> "$work/runs"
    sleep 2
  done
}

echo "Kamailio $(kamailio -v | head -1 | cut -d' ' -f3), rates: $RATES, $SECS s each, $SEATS seats"
mkdir -p "$work/kam/run"
kamailio -DD -E -f "$work/kam/kamailio.cfg" -Y "$work/kam/run" -l "udp:127.0.0.1:$SIP_PORT" \
  -m 256 -M 16 > "$work/kam/kamailio.log" 2>&1 &
TARGET=$!
sleep 1
kill -0 "$TARGET" 2>/dev/null || { cat "$work/kam/kamailio.log" >&2; exit 1; }
seats_up "$work/kam_seats.csv"
ladder kamailio
stop

# The router: the shipped plans, without the samu greeting, hold music and reassurance.
cp -r dialplans "$work/dialplans"
sed -i '/^greeting = "accueil-15"/d; /^hold = "musique-attente"/d; /^reassurance/d' \
  "$work/dialplans/samu.toml"
N_SEATS=$SEATS DIALPLANS="$work/dialplans"
# shellcheck source=loadtest/router.sh
. loadtest/router.sh
TARGET=$ROUTER
curl -sf "127.0.0.1:$HTTP_PORT/healthz" > /dev/null || { cat "$work/router.log" >&2; exit 1; }
seats_up "$work/seats.csv"
ladder router
stop

python3 - "$work/runs" "$clk" <<'PY'
import csv, glob, sys
runs, clk = sys.argv[1], float(sys.argv[2])
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")
res = {}
for line in open(runs):
    name, rate, d, c0, c1 = line.split()
    rows = list(csv.reader(open(f"{d}/stats.csv"), delimiter=";"))
    head, last = rows[0], rows[-1]
    ok = int(last[head.index("SuccessfulCall(C)")]); failed = int(last[head.index("FailedCall(C)")])
    rtd = {"ringing": [], "answer": []}
    for f in glob.glob(f"{d}/*_rtt.csv"):
        for r in list(csv.reader(open(f), delimiter=";"))[1:]:
            if len(r) >= 3 and r[2] in rtd:
                rtd[r[2]].append(float(r[1]))
    cpu_ms = (int(c1) - int(c0)) / clk * 1000 / max(1, ok)
    res[(name, int(rate))] = (ok, failed, cpu_ms, pct(rtd["ringing"], 99), pct(rtd["answer"], 99))
rates = sorted({r for _, r in res})
print("| calls/s | Kamailio ok / failed | CPU/call | p99 180 / 200 | router ok / failed | CPU/call | p99 180 / 200 | CPU ratio |")
print("|---|---|---|---|---|---|---|---|")
for r in rates:
    k, s = res.get(("kamailio", r)), res.get(("router", r))
    cell = lambda x: f"{x[0]} / {x[1]} | {x[2]:.2f} ms | {x[3]:.0f} / {x[4]:.0f} ms" if x else "— | — | —"
    ratio = f"{s[2] / k[2]:.2f}×" if k and s and k[2] > 0 else "—"
    print(f"| {r} | {cell(k)} | {cell(s)} | {ratio} |")
def max_ok(name):
    best = 0
    for r in rates:
        x = res.get((name, r))
        if not x or x[1] > 0.001 * (x[0] + x[1]):
            break
        best = r
    return best
k, s = max_ok("kamailio"), max_ok("router")
print(f"max calls/s with < 0.1 % failed (ladder): Kamailio {k}, router {s}"
      + (f" ({s / k:.2f}× Kamailio)" if k else ""))
PY
