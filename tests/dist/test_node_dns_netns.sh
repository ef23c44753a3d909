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
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=netns_dns.sh
source "$here/netns_dns.sh"

# ---- inside the namespace ---------------------------------------------------

if ndns_inner; then
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

# ---- outside: the namespace ---------------------------------------------------

[ -x "$node_main" ] || fail "no test node program at $node_main"
ndns_setup troupe-dns "$(printf 'nameserver 198.18.0.53\noptions timeout:1 attempts:2')" \
	11 12 13 14 15 16 20
ndns_run_inside "$here/$(basename "${BASH_SOURCE[0]}")" "$node_main"
