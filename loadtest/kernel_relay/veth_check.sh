#!/usr/bin/env bash
# Feasibility check: the kernel relay between two network namespaces, as a second machine
# for the generator would be. A veth pair joins the root namespace (kr0, 10.77.0.1, where
# the relay's program sits on tc ingress) and namespace krelay-peer (kr1, 10.77.0.2, where a
# caller and a seat socket live). The caller and the seat are offered/answered over ng, send
# RTP to the relay's ports, and each must receive the other's packets from the relay's
# port facing it: rewritten in the kernel and redirected back out of kr0 (MACs swapped).
# Root only, and ethtool; removes the namespace and the veth pair on exit. Prints PASS or fails.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet
NS=krelay-peer; NG=10.77.0.1:9873
cleanup() { [ -n "${RELAY:-}" ] && kill "$RELAY" 2>/dev/null; ip netns del $NS 2>/dev/null || true; ip link del kr0 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $NS
ip link add kr0 type veth peer name kr1
ip link set kr1 netns $NS
ip addr add 10.77.0.1/24 dev kr0 && ip link set kr0 up
ip -n $NS addr add 10.77.0.2/24 dev kr1 && ip -n $NS link set kr1 up && ip -n $NS link set lo up
# Checksums in software both ways (veth marks packets verified when rx offload is on): the
# peer's packets carry full UDP checksums, not a partial one left for the NIC, so the
# receiving stack verifies the program's rewrite and drops the packet if it got it wrong
# (checked: a rewrite off by one fails this script).
ip netns exec $NS ethtool -K kr1 tx off rx off >/dev/null
ethtool -K kr0 tx off rx off >/dev/null
target/release/kernel-relay --interface kr0 --addr 10.77.0.1 --ng $NG --ports 40000-40099 --swap-mac \
  > /tmp/krelay-veth.out 2> /tmp/krelay-veth.err &
RELAY=$!
sleep 1
ip netns exec $NS python3 - "$NG" <<'PY'
import socket, sys
host, port = sys.argv[1].split(":"); ng = (host, int(port))
def benc(d):
    out = b"d"
    for k in sorted(d):
        v = d[k].encode() if isinstance(d[k], str) else d[k]
        out += b"%d:%s%d:%s" % (len(k), k.encode(), len(v), v)
    return out + b"e"
def sdp(port):
    return f"v=0\r\no=x 1 1 IN IP4 10.77.0.2\r\ns=-\r\nc=IN IP4 10.77.0.2\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\n"
def media(body):
    text = body.decode("latin1")
    return int(text.split("m=audio ")[1].split(" ")[0])
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(2)
def ng_req(d):
    c.sendto(b"k1 " + benc(d), ng); return c.recv(65535)
to_seat = media(ng_req({"command": "offer", "call-id": "v", "from-tag": "a", "sdp": sdp(7000)}))
to_caller = media(ng_req({"command": "answer", "call-id": "v", "from-tag": "a", "to-tag": "b", "sdp": sdp(7002)}))
caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); caller.bind(("10.77.0.2", 7000)); caller.settimeout(2)
seat = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); seat.bind(("10.77.0.2", 7002)); seat.settimeout(2)
rtp = bytes([0x80, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9]) + b"\xd5" * 160
for i in range(10):
    caller.sendto(rtp, ("10.77.0.1", to_caller))
    data, src = seat.recvfrom(2048)
    assert data == rtp and src == ("10.77.0.1", to_seat), (src, to_seat)
    seat.sendto(rtp, ("10.77.0.1", to_seat))
    data, src = caller.recvfrom(2048)
    assert data == rtp and src == ("10.77.0.1", to_caller), (src, to_caller)
print(f"20 packets relayed in the kernel between namespaces (caller -> 10.77.0.1:{to_caller} -> seat, seat -> 10.77.0.1:{to_seat} -> caller)")
PY
kill "$RELAY"; wait "$RELAY" || true; RELAY=""
cat /tmp/krelay-veth.out
grep -q 'packets=20 ' /tmp/krelay-veth.out && grep -q 'tap_records=20 ' /tmp/krelay-veth.out
echo PASS
