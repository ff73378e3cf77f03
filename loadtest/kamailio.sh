# Sourced by loadtest/sidebyside.sh: Kamailio 5.6 as registrar + proxy for the side-by-side run.
# Needs work, SEATS, SIP_PORT. Writes SEATS subscribers (load0000…, password load-pw, realm
# sas-router; their SIPp CSV in $work/kam_seats.csv) to a db_text table and a routing script
# (auth_db REGISTER, usrloc in memory, the trunk's INVITE to the next seat round robin,
# record-routed); kamailio_up starts it (2 UDP workers: one per core here, -m 256 MB shared
# pool, -M 16 MB per process) and sets TARGET to its pid.
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

kamailio_up() {
  mkdir -p "$work/kam/run"
  nice -n "${NICE:-0}" kamailio -DD -E -f "$work/kam/kamailio.cfg" -Y "$work/kam/run" -l "udp:127.0.0.1:$SIP_PORT" \
    -m 256 -M 16 > "$work/kam/kamailio.log" 2>&1 &
  TARGET=$!
  sleep 1
  kill -0 "$TARGET" 2>/dev/null || { cat "$work/kam/kamailio.log" >&2; exit 1; }
}
