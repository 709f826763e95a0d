#!/bin/sh
# Issue 9 fair-share experiment (docs/benchmarks.md, "Issue 9 — udpflow"): a udpflow flow and a
# plain TCP flow (Linux CUBIC) share one veth link shaped by tbf between two network namespaces.
# Needs root (ip netns, tc). usage: scripts/bench_fair_share.sh [RATE] [SECONDS] [udp|tcp|both]
# Prints each flow's receive rate from 4 s to SECONDS-2 s after its first byte.
# CONGESTION=cubic|newreno|bbr picks the udpflow sender's controller (default: rendr's).
set -u
RATE=${1:-50mbit}; SECS=${2:-20}; WHICH=${3:-both}
RENDR=${RENDR:-$(dirname "$0")/../build/rendr}
CC_FLAG=${CONGESTION:+--congestion $CONGESTION}
TMP=$(mktemp -d)
cat >"$TMP/count.py" <<'PY'
import socket, sys, time
name, w0, w1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
if len(sys.argv) > 4:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[4], int(sys.argv[5]))); s.listen(1); c, _ = s.accept()
    read = lambda: c.recv(1 << 20)
else:
    read = lambda: sys.stdin.buffer.read1(1 << 20)
t0 = None; inwin = 0; total = 0
while True:
    b = read()
    if not b: break
    now = time.time(); t0 = t0 or now; total += len(b)
    if w0 <= now - t0 <= w1: inwin += len(b)
print(f"{name}: {inwin / (w1 - w0) / 1e6:.3f} MB/s in [{w0:.0f},{w1:.0f}] s, total {total} bytes", flush=True)
PY
cat >"$TMP/send.py" <<'PY'
import socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2]))); buf = b"x" * 65536
end = time.time() + float(sys.argv[3])
while time.time() < end: c.sendall(buf)
c.close()
PY
cleanup() { ip netns del fs_a 2>/dev/null; ip netns del fs_b 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add fs_a && ip netns add fs_b || exit 1
ip link add fs_va netns fs_a type veth peer name fs_vb netns fs_b
ip -n fs_a addr add 10.212.0.1/24 dev fs_va; ip -n fs_b addr add 10.212.0.2/24 dev fs_vb
for ns in fs_a fs_b; do ip -n $ns link set lo up; done
ip -n fs_a link set fs_va up; ip -n fs_b link set fs_vb up
ip netns exec fs_a tc qdisc add dev fs_va root tbf rate "$RATE" burst 64kb latency 50ms
W1=$((SECS - 2))
[ "$WHICH" != tcp ] && ip netns exec fs_b sh -c "$RENDR listen --udp 10.212.0.2:7000 --stdio --budget-ms 2000 2>/dev/null | python3 $TMP/count.py udpflow 4 $W1" &
[ "$WHICH" != udp ] && ip netns exec fs_b python3 "$TMP/count.py" tcp 4 $W1 10.212.0.2 7001 &
sleep 1
[ "$WHICH" != tcp ] && ip netns exec fs_a sh -c "timeout $SECS $RENDR dial --path udpflow://10.212.0.2:7000 $CC_FLAG --budget-ms 2000 </dev/zero >/dev/null 2>&1" &
[ "$WHICH" != udp ] && ip netns exec fs_a python3 "$TMP/send.py" 10.212.0.2 7001 "$SECS" &
wait
ip netns exec fs_a tc -s qdisc show dev fs_va | sed -n 2p
