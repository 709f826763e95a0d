#!/bin/sh
# Issue 9 fair-share experiment (docs/benchmarks.md, "Issue 9 — udpflow"): a udpflow flow and a
# plain TCP flow (Linux CUBIC unless TCP_CC says) share one link shaped by tbf. Three network
# namespaces: sender (fs_a) -> router (fs_r) -> receiver (fs_b); the tbf queue is the router's
# egress towards the receiver, so the bottleneck drops packets as a router does. (With the tbf
# on the sender's own egress, as before session 9, the sender's kernel throttles a local TCP
# socket before its queue overflows (TCP Small Queues) and counts a local drop as congestion:
# even two TCP flows split that link 14/86 there.)
# The veths' segmentation offloads are off, so the bottleneck queues and drops wire-sized packets
# as a router does (with them on, a whole GSO train of up to 64 datagrams, or a TSO burst, went
# through the veths as one buffer and was dropped as one).
# Needs root (ip netns, tc, ethtool). usage:
#   scripts/bench_fair_share.sh [RATE] [SECONDS] [udp|tcp|both|tcp2]
# (tcp2: two TCP flows, the control). Prints each flow's receive rate per 5 s, its mean rate from
# SECONDS/3 to SECONDS-2 after its first byte, and the router's tbf counters. Two loss-based
# flows through a 50 ms queue take tens of seconds to converge (CUBIC's epochs last seconds at
# this window), so runs shorter than a minute measure the start, not the share.
# CONGESTION=cubic|newreno|bbr picks the udpflow sender's controller (default: rendr's);
# TCP_CC the TCP flows' (default cubic, set on each sending socket: a new namespace inherits the
# host's net.ipv4.tcp_congestion_control, which is bbr on some machines, and may not change it).
# QUEUE is the bottleneck's buffer as tbf's latency (default 50ms; e.g. 5ms for a shallow one).
set -u
RATE=${1:-50mbit}; SECS=${2:-60}; WHICH=${3:-both}
RENDR=${RENDR:-$(dirname "$0")/../build/rendr}
CC_FLAG=${CONGESTION:+--congestion $CONGESTION}
TCP_CC=${TCP_CC:-cubic}
QUEUE=${QUEUE:-50ms}
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
t0 = None; inwin = 0; total = 0; buckets = {}
while True:
    b = read()
    if not b: break
    now = time.time(); t0 = t0 or now; total += len(b)
    if w0 <= now - t0 <= w1: inwin += len(b)
    bucket = int((now - t0) // 5); buckets[bucket] = buckets.get(bucket, 0) + len(b)
print(f"{name} per 5 s (MB/s):", " ".join(f"{buckets[k] / 5e6:.2f}" for k in sorted(buckets)))
print(f"{name}: {inwin / (w1 - w0) / 1e6:.3f} MB/s in [{w0:.0f},{w1:.0f}] s, total {total} bytes", flush=True)
PY
cat >"$TMP/send.py" <<'PY'
import socket, sys, time
c = socket.socket()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[4].encode())
c.connect((sys.argv[1], int(sys.argv[2]))); buf = b"x" * 65536
end = time.time() + float(sys.argv[3])
while time.time() < end: c.sendall(buf)
c.close()
PY
cleanup() { for ns in fs_a fs_r fs_b; do ip netns del $ns 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add fs_a && ip netns add fs_r && ip netns add fs_b || exit 1
ip link add fs_va netns fs_a type veth peer name fs_ra netns fs_r
ip link add fs_rb netns fs_r type veth peer name fs_vb netns fs_b
ip -n fs_a addr add 10.212.0.1/24 dev fs_va; ip -n fs_r addr add 10.212.0.254/24 dev fs_ra
ip -n fs_r addr add 10.213.0.254/24 dev fs_rb; ip -n fs_b addr add 10.213.0.2/24 dev fs_vb
for ns in fs_a fs_r fs_b; do ip -n $ns link set lo up; done
ip -n fs_a link set fs_va up; ip -n fs_r link set fs_ra up; ip -n fs_r link set fs_rb up
ip -n fs_b link set fs_vb up
for link in "fs_a fs_va" "fs_r fs_ra" "fs_r fs_rb" "fs_b fs_vb"; do
  set -- $link
  ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx-udp-segmentation off >/dev/null ||
    { echo "ethtool -K $2 failed: the bottleneck would see offload-sized buffers" >&2; exit 1; }
done
ip -n fs_a route add default via 10.212.0.254; ip -n fs_b route add default via 10.213.0.254
ip netns exec fs_r sysctl -qw net.ipv4.ip_forward=1
echo "udpflow: ${CONGESTION:-rendr's default}; tcp: $TCP_CC (the namespace's default:" \
  "$(ip netns exec fs_a sysctl -n net.ipv4.tcp_congestion_control)); queue $QUEUE"
ip netns exec fs_r tc qdisc add dev fs_rb root tbf rate "$RATE" burst 64kb latency "$QUEUE"
W0=$((SECS / 3)); W1=$((SECS - 2))
case "$WHICH" in udp|both)
  ip netns exec fs_b sh -c "$RENDR listen --udp 10.213.0.2:7000 --stdio --budget-ms 2000 2>/dev/null | python3 $TMP/count.py udpflow $W0 $W1" & ;;
esac
case "$WHICH" in tcp|both|tcp2) ip netns exec fs_b python3 "$TMP/count.py" tcp $W0 $W1 10.213.0.2 7001 & ;; esac
[ "$WHICH" = tcp2 ] && ip netns exec fs_b python3 "$TMP/count.py" tcp2 $W0 $W1 10.213.0.2 7002 &
sleep 1
case "$WHICH" in udp|both)
  ip netns exec fs_a sh -c "timeout $SECS $RENDR dial --path udpflow://10.213.0.2:7000 $CC_FLAG --budget-ms 2000 </dev/zero >/dev/null 2>&1" & ;;
esac
case "$WHICH" in tcp|both|tcp2) ip netns exec fs_a python3 "$TMP/send.py" 10.213.0.2 7001 "$SECS" "$TCP_CC" & ;; esac
[ "$WHICH" = tcp2 ] && ip netns exec fs_a python3 "$TMP/send.py" 10.213.0.2 7002 "$SECS" "$TCP_CC" &
wait
ip netns exec fs_r tc -s qdisc show dev fs_rb | sed -n 2p
