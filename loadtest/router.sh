# Sourced by the load drivers: starts a release router on the shipped configuration, on the
# load-test ports SIP_PORT and HTTP_PORT, data under $work, with N_SEATS ARM seats load0000…
# and N_AMU (default 0) AMU regulator seats amu0000… (MD5 HA1 only: SIPp answers MD5
# challenges only) whose credentials go to $work/seats.csv and $work/amu.csv for
# loadtest/register_many.xml. With WS_PORT set, it also listens for SIP over WebSocket
# there ([sip] ws); with CACHE_MB set, [store] cache_capacity_mb is that. Sets ROUTER to its
# pid once /healthz answers. ROUTER_WRAP (unquoted) prefixes the command (`heaptrack -o FILE`).
# ROUTER_BIN runs another build (e.g. one from before [overload], with OVERLOAD_SECTION=0
# to leave that section out of its config; OVERLOAD_SECTION=off turns every limit off
# (max_calls, max_call_rate, max_queue_delay_ms = 0); OVERLOAD_SECTION=... replaces its body).
# DIALPLANS=DIR takes the dial plans from DIR instead of dialplans/. RECORDING=0 turns
# [recording] off. RTP_PORT_MIN and RTP_PORT_MAX widen [media]'s RTP range (the shipped
# 20000-29999 holds ~1,660 calls: six ports a call). KERNEL_RELAY=1 sets [media]
# kernel_relay = true (the eBPF relay: root). WORKERS=N sets [runtime] worker_threads.
# GROUP_COMMIT_MS=N sets [store] group_commit_ms, BATCH_WINDOW_MS=N its batch_window_ms.
python3 - "$work" "$N_SEATS" "$SIP_PORT" "$HTTP_PORT" "${N_AMU:-0}" "${WS_PORT:-}" "${CACHE_MB:-}" "${OVERLOAD_SECTION:-}" "${DIALPLANS:-}" "${RECORDING:-1}" "${RTP_PORT_MAX:-}" "${RTP_PORT_MIN:-}" "${KERNEL_RELAY:-0}" "${WORKERS:-}" "${GROUP_COMMIT_MS:-}" "${BATCH_WINDOW_MS:-}" <<'PY'
import hashlib, sys, re
work, seats, sip, http = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
amus, ws, cache, overload, plans = int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8], sys.argv[9]
recording = sys.argv[10] != "0"
base = open("config/sas-router.toml").read().split("[[seats]]")[0]
base = base.replace('127.0.0.1:5060', f'127.0.0.1:{sip}').replace('127.0.0.1:8080', f'127.0.0.1:{http}')
base = base.replace('data_dir = "./data"', f'data_dir = "{work}/data"')
if sys.argv[11]:
    base = base.replace('rtp_port_max = 29999', f'rtp_port_max = {sys.argv[11]}')
if sys.argv[12]:
    base = base.replace('rtp_port_min = 20000', f'rtp_port_min = {sys.argv[12]}')
if sys.argv[13] == "1":
    base = base.replace('# kernel_relay = false', 'kernel_relay = true')
if sys.argv[14]:
    base = base.replace('# [runtime]\n# worker_threads = 1', f'[runtime]\nworker_threads = {sys.argv[14]}')
if sys.argv[15]:
    base = re.sub(r'group_commit_ms = \d+', f'group_commit_ms = {sys.argv[15]}', base)
if sys.argv[16]:
    base = re.sub(r'batch_window_ms = \d+', f'batch_window_ms = {sys.argv[16]}', base)
if plans:
    base = base.replace('dialplans_dir = "dialplans"', f'dialplans_dir = "{plans}"')
if ws:
    base = base.replace('# ws = "127.0.0.1:5066"', f'ws = "127.0.0.1:{ws}"')
base = re.sub(r'wrap_up_s = \d+', 'wrap_up_s = 0', base)
if cache:
    base = re.sub(r'cache_capacity_mb = \d+', f'cache_capacity_mb = {cache}', base)
base = base.replace('level = "info"', 'level = "warn"')
if not recording:
    base = re.sub(r'(\[recording\][^\[]*?)enabled = true', r'\1enabled = false', base, flags=re.S)
if overload == "off":
    overload = "max_calls = 0;max_call_rate = 0;max_queue_delay_ms = 0"
if overload:
    body = "" if overload == "0" else "[overload]\n" + overload.replace(";", "\n") + "\n\n"
    base = re.sub(r'\[overload\]\n.*?(?=\n\[)', body.rstrip("\n"), base, flags=re.S)
out = [base]
def seats_of(prefix, n, role, path):
    csv = ["SEQUENTIAL"]
    for i in range(n):
        u, p = f"{prefix}{i:04d}", "load-pw"
        h = hashlib.md5(f"{u}:sas-router:{p}".encode()).hexdigest()
        out.append(f'[[seats]]\nusername = "{u}"\nrole = "{role}"\nha1_md5 = "{h}"\n')
        csv.append(f"{u};[authentication username={u} password={p}]")
    open(path, "w").write("\n".join(csv) + "\n")
seats_of("load", seats, "arm", f"{work}/seats.csv")
seats_of("amu", amus, "regulateur_amu", f"{work}/amu.csv")
open(f"{work}/config.toml", "w").write("\n".join(out))
PY

${ROUTER_WRAP:-} "${ROUTER_BIN:-${CARGO_TARGET_DIR:-target}/release/sas-router}" -c "$work/config.toml" > "$work/router.log" 2>&1 &
ROUTER=$!
for _ in $(seq 50); do curl -sf "127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# Under a wrapper, ROUTER is the router itself (its child), for VmRSS and for stopping it.
if [ -n "${ROUTER_WRAP:-}" ]; then ROUTER=$(pgrep -P "$ROUTER" sas-router || echo "$ROUTER"); fi
