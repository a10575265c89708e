# SPDX-License-Identifier: MIT
# The bench's links (sourced by bench/bench.sh): the servers run in a
# network namespace of their own, reached over a veth pair whose two
# ends tc shapes with tbf (this kernel has tbf and htb, not netem; the
# far link's latency comes from bench/delayproxy.py).
#
#   link_create          the namespace $NS (10.231.0.2 inside,
#                        10.231.0.1 here; BENCH_SUBNET=10.232.0 for
#                        another bench at the same time), unshaped
#   link_shape RATE|none shape both directions to RATE (tc syntax:
#                        100mbit, 20mbit), or remove the shaping
#   link_destroy         remove the namespace and the pair
#
# Nothing listens outside the namespace and 127.0.0.1.

NS=${BENCH_NS:-vmfbench$$}
NS_IP=${BENCH_SUBNET:-10.231.0}.2
HOST_IP=${BENCH_SUBNET:-10.231.0}.1
VETH_HOST=vmfb$$h
VETH_NS=vmfb$$n
FAR_RATE=${BENCH_FAR_RATE:-100mbit}
FAR_DELAY_MS=${BENCH_FAR_DELAY_MS:-20} # each way: 40 ms round trip

link_create() {
	command -v ip >/dev/null && command -v tc >/dev/null ||
		fail "the bench needs ip and tc (Debian's iproute2)"
	ip netns add "$NS" || fail "cannot create network namespace $NS (root?)"
	ip link add "$VETH_HOST" type veth peer name "$VETH_NS" &&
		ip link set "$VETH_NS" netns "$NS" &&
		ip addr add "$HOST_IP/30" dev "$VETH_HOST" &&
		ip link set "$VETH_HOST" up &&
		ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$VETH_NS" &&
		ip netns exec "$NS" ip link set "$VETH_NS" up &&
		ip netns exec "$NS" ip link set lo up ||
		fail "cannot set up the veth pair"
}

# tbf: a bucket of at least 10 ms of the rate (and 64 KiB), a queue of
# 100 ms: a link, not a policer that drops every burst.
link_shape() {
	tc qdisc del dev "$VETH_HOST" root 2>/dev/null || true
	ip netns exec "$NS" tc qdisc del dev "$VETH_NS" root 2>/dev/null || true
	[ "$1" = none ] && return 0
	local bits
	case $1 in
	*gbit) bits=$((${1%gbit} * 1000000000)) ;;
	*mbit) bits=$((${1%mbit} * 1000000)) ;;
	*kbit) bits=$((${1%kbit} * 1000)) ;;
	*) fail "link_shape: bad rate '$1'" ;;
	esac
	local burst=$((bits / 8 / 100))
	[ "$burst" -ge 65536 ] || burst=65536
	tc qdisc add dev "$VETH_HOST" root tbf rate "$1" burst "$burst" latency 100ms ||
		fail "tc tbf on $VETH_HOST"
	ip netns exec "$NS" tc qdisc add dev "$VETH_NS" root tbf rate "$1" burst "$burst" latency 100ms ||
		fail "tc tbf in $NS"
}

link_destroy() {
	ip link del "$VETH_HOST" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
}
