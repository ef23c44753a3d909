#!/usr/bin/env bash
# The StatefulSet's discovery for real (deploy/k8s, docs/deploy.md
# "Kubernetes"): the value of TROUPE_DNS the StatefulSet gives its pods,
# read from deploy/k8s/statefulset.yaml, resolved as a pod resolves it.
#
#   test_k8s_dns.sh TEST_NODE_PROGRAM SOURCE_DIR
#
# A network namespace of the test's own (tests/dist/netns_dns.sh) with a
# resolv.conf like a pod's in the namespace "default" (search
# default.svc.cluster.local svc.cluster.local cluster.local, ndots:5)
# and a dnsmasq that knows only the headless Service's full name,
# troupe-kv-nodes.default.svc.cluster.local, with three A records in
# 198.18.0.0/15, one per pod, as the cluster's DNS publishes them:
#
#   1. The short name resolves to the three addresses through the search
#      path only (the bare name, absolute, does not resolve).
#   2. Three test nodes troupe-kv-0..2, each listening on its "pod's"
#      address and the port as the StatefulSet says, given exactly its
#      TROUPE_DNS: each sees the two others.
#   3. A pod comes back elsewhere: troupe-kv-1 stops, the records give
#      its name a new address, it starts there: the three mesh again.
#   4. The full name, troupe-kv-nodes.default.svc.cluster.local:PORT, as
#      docs/deploy.md offers it too: three nodes mesh.
#
# Needs root (ip netns) and dnsmasq; skips saying why without them. The
# namespace, its /etc/netns directory and every process in it are
# removed at the end, on failure too.
set -uo pipefail

node_main=${1:?usage: $0 TEST_NODE_PROGRAM SOURCE_DIR}
src=${2:?usage: $0 TEST_NODE_PROGRAM SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=../dist/netns_dns.sh
source "$src/tests/dist/netns_dns.sh"

fqdn_of() { # NAME: its form in the namespace "default"
	echo "$1.default.svc.cluster.local"
}

# ---- inside the namespace ---------------------------------------------------

if ndns_inner; then
	dns=$TT_K8S_DNS     # NAME:PORT, from the StatefulSet
	name=${dns%:*}
	port=${dns##*:}
	fqdn=$(fqdn_of "$name")
	echo "local=/cluster.local/" >"$tmp/records.conf"
	records() { # the last octets of the pods' addresses
		echo "198.18.0.53 dns-ready.troupe.test"
		local a
		for a in "$@"; do echo "198.18.0.$a $fqdn"; done
	}
	records 11 12 13 >"$tmp/hosts"
	dns_start

	# 1. The search path completes the short name.
	got=$(getent ahostsv4 "$name" | awk '{ print $1 }' | sort -u | tr '\n' ' ')
	got=${got% }
	[ "$got" = "198.18.0.11 198.18.0.12 198.18.0.13" ] ||
		fail "$name resolved to '$got', not the three pods' addresses"
	getent ahostsv4 "$name." >/dev/null &&
		fail "$name. resolved as an absolute name: the search path is not what is tested"
	echo "ok: $name is $got through the pod's search path"

	# 2. Three pods.
	for i in 0 1 2; do
		node "troupe-kv-$i" "tcp://198.18.0.1$((i + 1)):$port" TROUPE_DNS="$dns"
	done
	wait_mesh troupe-kv-0 troupe-kv-1 troupe-kv-2 ||
		fail "three nodes given TROUPE_DNS=$dns did not mesh"
	echo "ok: troupe-kv-0..2 given TROUPE_DNS=$dns found each other"

	# 3. troupe-kv-1 comes back on another address.
	stop_node troupe-kv-1
	dns_stop
	records 11 14 13 >"$tmp/hosts"
	dns_start
	node troupe-kv-1 "tcp://198.18.0.14:$port" TROUPE_DNS="$dns"
	wait_mesh troupe-kv-0 troupe-kv-1 troupe-kv-2 ||
		fail "troupe-kv-1 on a new address did not rejoin"
	echo "ok: troupe-kv-1 on a new address rejoined the two others"
	stop_nodes

	# 4. The full name.
	for i in 0 1 2; do
		node "troupe-kv-$i" "tcp://198.18.0.1$((i + 1)):$port" TROUPE_DNS="$fqdn:$port"
	done
	wait_mesh troupe-kv-0 troupe-kv-1 troupe-kv-2 ||
		fail "three nodes given TROUPE_DNS=$fqdn:$port did not mesh"
	echo "ok: the full name $fqdn:$port works as well"
	stop_nodes
	dns_stop
	exit 0
fi

# ---- outside ----------------------------------------------------------------

ndns_unable() {
	skip "$*"
}

[ -x "$node_main" ] || fail "no test node program at $node_main"
deploy_python yaml
dns=$("$python" -B - "$src/deploy/k8s/statefulset.yaml" <<'PY'
import sys, yaml
sts = yaml.safe_load(open(sys.argv[1]))
env = sts["spec"]["template"]["spec"]["containers"][0]["env"]
print([e["value"] for e in env if e["name"] == "TROUPE_DNS"][0])
PY
) || fail "no TROUPE_DNS in deploy/k8s/statefulset.yaml"
[[ $dns =~ ^[a-z0-9-]+:[0-9]+$ ]] ||
	fail "the StatefulSet's TROUPE_DNS '$dns' is not SHORT-NAME:PORT, which this test resolves"
echo "the StatefulSet's TROUPE_DNS: $dns"

ndns_setup troupe-k8s-dns "$(printf '%s\n' \
	'search default.svc.cluster.local svc.cluster.local cluster.local' \
	'nameserver 198.18.0.53' \
	'options ndots:5 timeout:1 attempts:2')" 11 12 13 14
TT_K8S_DNS=$dns ndns_run_inside "$here/$(basename "${BASH_SOURCE[0]}")" "$node_main" "$src"
