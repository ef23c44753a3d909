#!/usr/bin/env bash
# DNS discovery against a real DNS server (docs/distribution.md,
# "Discovery"):
#
#   test_node_dns_netns.sh TEST_NODE_PROGRAM
#
# Makes a network namespace of its own (addresses of 198.18.0.0/15 on its
# loopback only), an /etc/netns/NS/resolv.conf that points at a dnsmasq
# (Debian's dnsmasq-base) run in it with --no-resolv --no-hosts and the
# test's records, and runs the rest of itself inside (ip netns exec), so
# that glibc's resolver of every node process asks that dnsmasq:
#
#   1. Five node processes, each given only TROUPE_DNS=NAME:PORT (the A
#      records of one name, as a Kubernetes headless Service has), all
#      listening on port 4100 of their own 198.18.0.x: each sees the four
#      others.
#   2. A sixth, started with no discovery at all, is not in the records:
#      nobody dials it. The records change (dnsmasq restarted with it):
#      the others look the name up again and each of the six sees the
#      five others.
#   3. Five nodes given TROUPE_DNS=srv:NAME, on one address and five ports
#      that only the SRV records tell: each sees the four others.
#
# Needs root (ip netns) and dnsmasq: without them it fails and says why.
# The namespace, its /etc/netns directory and every process in it are
# removed at the end, on failure too.
set -uo pipefail

node_main=${1:?usage: $0 TEST_NODE_PROGRAM}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# ---- inside the namespace ---------------------------------------------------

if [ "${TT_DNS_INNER:-}" = 1 ]; then
	tmp=$TT_DNS_TMP
	declare -A pid
	dnsmasq_pid=""

	dns_start() {
		dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
			--no-hosts --user=root --group=root --pid-file= \
			--listen-address=198.18.0.53 --bind-interfaces --port=53 \
			--addn-hosts="$tmp/hosts" --conf-file="$tmp/records.conf" \
			--log-facility="$tmp/dnsmasq.log" &
		dnsmasq_pid=$!
		# Ready when it answers.
		local i
		for ((i = 0; i < 100; i++)); do
			getent ahostsv4 dns-ready.troupe.test >/dev/null && return 0
			sleep 0.05
		done
		fail "dnsmasq did not answer (see $tmp/dnsmasq.log)"
	}

	dns_stop() {
		[ -n "$dnsmasq_pid" ] || return 0
		kill "$dnsmasq_pid" 2>/dev/null
		wait "$dnsmasq_pid" 2>/dev/null
		dnsmasq_pid=""
	}

	# node NAME URL [ENV=VALUE...]: starts a test node, its stdout in
	# $tmp/NAME.out, and waits for its READY line.
	node() {
		local name=$1 url=$2 i
		shift 2
		env "$@" "$node_main" "$name" "$url" secret >"$tmp/$name.out" 2>"$tmp/$name.err" &
		pid[$name]=$!
		for ((i = 0; i < 200; i++)); do
			grep -q '^READY ' "$tmp/$name.out" 2>/dev/null && return 0
			sleep 0.05
		done
		fail "node $name did not start: $(cat "$tmp/$name.err")"
	}

	# nodes_of NAME: the names node NAME is connected to, sorted, one line.
	nodes_of() {
		local f=$tmp/$1.out before
		before=$(grep -c '^NODES' "$f")
		kill -USR1 "${pid[$1]}" 2>/dev/null || return 1
		local i
		for ((i = 0; i < 40; i++)); do
			[ "$(grep -c '^NODES' "$f")" -gt "$before" ] && break
			sleep 0.025
		done
		grep '^NODES' "$f" | tail -n 1 | sed 's/^NODES *//' | tr ' ' '\n' |
			grep . | sort | tr '\n' ' ' | sed 's/ $//'
	}

	# wait_mesh NAMES...: each of NAMES sees exactly the others, within
	# 20 s.
	wait_mesh() {
		local end=$((SECONDS + 20)) n want ok
		while [ $SECONDS -lt $end ]; do
			ok=1
			for n in "$@"; do
				want=$(printf '%s\n' "$@" | grep -vx "$n" | sort | tr '\n' ' ' | sed 's/ $//')
				[ "$(nodes_of "$n")" = "$want" ] || { ok=0; break; }
			done
			[ $ok = 1 ] && return 0
			sleep 0.1
		done
		for n in "$@"; do echo "  $n sees: $(nodes_of "$n")" >&2; done
		return 1
	}

	stop_nodes() {
		local n
		for n in "${!pid[@]}"; do
			kill -9 "${pid[$n]}" 2>/dev/null
			wait "${pid[$n]}" 2>/dev/null
		done
		pid=()
	}

	: >"$tmp/records.conf"
	{
		echo "198.18.0.53 dns-ready.troupe.test"
		for i in 1 2 3 4 5; do echo "198.18.0.1$i nodes.troupe.test"; done
	} >"$tmp/hosts"
	dns_start

	# 1. Five nodes from the A records of one name.
	for i in 1 2 3 4 5; do
		node "n$i" "tcp://198.18.0.1$i:4100" TROUPE_DNS=nodes.troupe.test:4100
	done
	wait_mesh n1 n2 n3 n4 n5 || fail "five nodes from the A records did not mesh"
	echo "ok: five nodes found each other through the A records"

	# 2. A sixth, in no record and with no seeds: alone until the records
	# name it.
	node n6 tcp://198.18.0.16:4100
	sleep 1
	[ "$(nodes_of n6)" = "" ] || fail "n6 was found before it was in DNS: $(nodes_of n6)"
	dns_stop
	echo "198.18.0.16 nodes.troupe.test" >>"$tmp/hosts"
	dns_start
	wait_mesh n1 n2 n3 n4 n5 n6 || fail "the sixth node was not found when the records changed"
	echo "ok: a record added later was found by the next lookups"
	stop_nodes

	# 3. SRV records: one address, the ports only in the records.
	dns_stop
	{
		for i in 1 2 3 4 5; do
			echo "srv-host=_troupe._tcp.troupe.test,m$i.troupe.test,420$i,0,10"
		done
	} >"$tmp/records.conf"
	{
		echo "198.18.0.53 dns-ready.troupe.test"
		echo "198.18.0.20 m1.troupe.test m2.troupe.test m3.troupe.test m4.troupe.test m5.troupe.test"
	} >"$tmp/hosts"
	dns_start
	for i in 1 2 3 4 5; do
		node "m$i" "tcp://198.18.0.20:420$i" TROUPE_DNS=srv:_troupe._tcp.troupe.test
	done
	wait_mesh m1 m2 m3 m4 m5 || fail "five nodes from the SRV records did not mesh"
	echo "ok: five nodes found each other through the SRV records"
	stop_nodes
	dns_stop
	exit 0
fi

# ---- outside: the namespace and its cleanup ----------------------------------

[ "$(id -u)" -eq 0 ] || fail "needs root, for ip netns (the DNS test makes a network namespace)"
command -v ip >/dev/null || fail "no ip command (iproute2)"
command -v dnsmasq >/dev/null || fail "no dnsmasq (apt-get install dnsmasq-base; deploy/setup.sh does)"
[ -x "$node_main" ] || fail "no test node program at $node_main"

ns=troupe-dns-$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-dns-XXXXXX") || fail "mktemp"
cleanup() {
	local p
	for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null
	rm -rf "/etc/netns/$ns" "$tmp"
	rmdir /etc/netns 2>/dev/null # if no other namespace has one
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# What a run killed before its cleanup left: namespaces of ours whose
# script is gone.
for old in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep '^troupe-dns-[0-9]*$'); do
	kill -0 "${old#troupe-dns-}" 2>/dev/null && continue
	for p in $(ip netns pids "$old" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$old" 2>/dev/null
	rm -rf "/etc/netns/$old"
done

ip netns add "$ns" || fail "ip netns add $ns failed (not allowed here?)"
ip -n "$ns" link set lo up || fail "lo of $ns"
for a in 53 11 12 13 14 15 16 20; do
	ip -n "$ns" addr add "198.18.0.$a/32" dev lo || fail "address 198.18.0.$a"
done
mkdir -p "/etc/netns/$ns" || fail "/etc/netns/$ns"
printf 'nameserver 198.18.0.53\noptions timeout:1 attempts:2\n' >"/etc/netns/$ns/resolv.conf"

TT_DNS_INNER=1 TT_DNS_TMP=$tmp ip netns exec "$ns" bash "$here" "$node_main"
rc=$?
if [ $rc -ne 0 ]; then
	for f in "$tmp"/*.err "$tmp"/dnsmasq.log; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
	done
fi
exit $rc
