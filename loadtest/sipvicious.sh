#!/bin/sh
# SIPVicious 0.3.8 (svwar, svcrack) against the real binary with the shipped seats and
# passwords (arm1 / arm1-demo), as an attacker would run it: svwar enumerates seat names,
# svcrack tries a 10,000-word list that contains arm1's password. Both must find nothing.
# The attacker is 127.0.0.1 (SIPVicious ignores its -b): the trunk is moved to 127.0.0.5,
# since a trunk address is never banned.
# SV_TIME: seconds given to each tool (default 600). SIPVicious goes into loadtest/.venv.
set -eu
cd "$(dirname "$0")/.."
SV_TIME=${SV_TIME:-600}
venv=loadtest/.venv
if [ ! -x "$venv/bin/sipvicious_svwar" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q sipvicious==0.3.8
fi
cargo build -q
work=$(mktemp -d)
sed -e 's/"127.0.0.1:5060"/"127.0.0.1:15060"/' -e 's/"127.0.0.1:8080"/"127.0.0.1:18080"/' \
    -e "s|^data_dir = .*|data_dir = \"$work/data\"|" \
    -e 's/^addresses = \["127.0.0.1"\]/addresses = ["127.0.0.5"]/' \
    config/sas-router.toml > "$work/config.toml"
# 10,000 words, the right one near the end; names: the shipped seats among 1,000 others.
seq 1 10000 | sed 's/^/pass/' | sed '9000s/.*/arm1-demo/' > "$work/words.txt"
{ seq 100 999; echo arm1 arm2 arm3 arm4 amu1 amu2 lib1 lib2 osnp1 psy1 sup1 | tr ' ' '\n'; } \
    > "$work/names.txt"
target/debug/sas-router -c "$work/config.toml" > "$work/router.log" 2>&1 &
router=$!
trap 'kill $router 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf 127.0.0.1:18080/healthz > /dev/null; do sleep 0.2; done

echo "== svwar (REGISTER), ${SV_TIME}s"
timeout "$SV_TIME" "$venv/bin/sipvicious_svwar" -p 15060 -m REGISTER \
    -d "$work/names.txt" 127.0.0.1 2>&1 | tail -15 || true
echo "== svwar (INVITE), ${SV_TIME}s"
timeout "$SV_TIME" "$venv/bin/sipvicious_svwar" -p 15060 -m INVITE \
    -d "$work/names.txt" 127.0.0.1 2>&1 | tail -15 || true
echo "== svcrack arm1, ${SV_TIME}s"
timeout "$SV_TIME" "$venv/bin/sipvicious_svcrack" -p 15060 -u arm1 \
    -d "$work/words.txt" --maximumtime="$SV_TIME" 127.0.0.1 2>&1 | tail -15 || true
# The same cracker with its User-Agent changed to a desk phone's: the bans must hold it.
mkdir "$work/pkg"
cp -r "$venv"/lib/python3*/site-packages/sipvicious "$work/pkg/"
sed -i "s/useragent='friendly-scanner'/useragent='Yealink SIP-T46S 66.86.0.15'/" \
    "$work/pkg/sipvicious/libs/svhelper.py"
echo "== svcrack arm1 disguised as a Yealink phone, ${SV_TIME}s"
started=$(date +%s)
PYTHONPATH="$work/pkg" timeout "$SV_TIME" "$venv/bin/python" -c \
    'import sys; from sipvicious.svcrack import main; sys.argv[0] = "svcrack"; main()' \
    -p 15060 -u arm1 -d "$work/words.txt" --maximumtime="$SV_TIME" 127.0.0.1 2>&1 | tail -15 || true
echo "ended after $(( $(date +%s) - started ))s"
echo "== router"
curl -s 127.0.0.1:18080/metrics | grep -E '^sas_(bans|auth_failures|unbans|sip_requests)' || true
grep -c . "$work/router.log" | sed 's/^/log lines: /'
