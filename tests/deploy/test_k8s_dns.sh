#!/usr/bin/env bash
# The StatefulSet's discovery for real (deploy/k8s, docs/deploy.md
# "Kubernetes"): three troupe-kv nodes given the TROUPE_DNS and
# TROUPE_CLUSTER_SIZE the StatefulSet gives its pods, read from
# deploy/k8s/statefulset.yaml, resolving the name as a pod resolves it.
#
#   test_k8s_dns.sh TROUPE_KV SOURCE_DIR
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
#   2. Three troupe-kv nodes troupe-kv-0..2, each listening on its "pod's"
#      address with the StatefulSet's node port, its Redis port (6379) on
#      that address too, its observer and client endpoint on loopback
#      ports of their own (the three share the namespace's loopback,
#      where pods have one each), the cookie from a file as the Secret
#      gives it: each says "members 3/3" with every partition's primary
#      found, and that it is ready.
#   3. A pod comes back elsewhere: troupe-kv-1 stops (SIGTERM: status 0),
#      the records give its name a new address, it starts there: it is
#      ready again, and the two others see 3 of 3 again.
#   4. The full name, troupe-kv-nodes.default.svc.cluster.local:PORT, as
#      docs/deploy.md offers it too: three new nodes form a cluster.
#
# Needs root (ip netns) and dnsmasq; skips saying why without them. The
# namespace, its /etc/netns directory and every process in it are
# removed at the end, on failure too.
set -uo pipefail

kv=${1:?usage: $0 TROUPE_KV SOURCE_DIR}
src=${2:?usage: $0 TROUPE_KV SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=../dist/netns_dns.sh
source "$src/tests/dist/netns_dns.sh"
# shellcheck source=kv.sh
source "$here/kv.sh"

fqdn_of() { # NAME: its form in the namespace "default"
	echo "$1.default.svc.cluster.local"
}

# ---- inside the namespace ---------------------------------------------------

if ndns_inner; then
	dns=$TT_K8S_DNS     # NAME:PORT, from the StatefulSet
	name=${dns%:*}
	port=${dns##*:}
	size=$TT_K8S_SIZE   # TROUPE_CLUSTER_SIZE, from the StatefulSet
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

	kv_dir=$tmp
	trap 'kv_kill_all; dns_stop' EXIT
	printf '%s\n' "kv k8s dns test $$" >"$tmp/cookie"
	chmod 0440 "$tmp/cookie"
	declare -A from=()
	# pod I OCTET DNS: troupe-kv-I as the StatefulSet runs it, on
	# 198.18.0.OCTET.
	pod() {
		local n=troupe-kv-$1 addr=198.18.0.$2
		from[$n]=$(kv_lines "$n")
		kv_start "$n" TROUPE_LISTEN="tcp://$addr:$port" TROUPE_RESP="$addr:6379" \
			TROUPE_OBSERVER="127.0.0.1:$((8080 + $1))" \
			TROUPE_CLIENT="tcp://127.0.0.1:$((7200 + $1))" \
			TROUPE_DNS="$3" TROUPE_CLUSTER_SIZE="$size" \
			TROUPE_COOKIE_FILE="$tmp/cookie" -- --schedulers 1
	}
	# formed NAME...: each says, since it was last started, that it sees
	# all the members and every partition's primary, and that it is ready.
	formed() {
		local n
		for n in "$@"; do
			kv_wait "$n" 60 "members $size/$size, primaries ([0-9]+)/\\1," "${from[$n]}" >/dev/null &&
				kv_wait "$n" 10 ': ready$' "${from[$n]}" >/dev/null || {
				tail -n 5 "$tmp/$n.log" >&2
				return 1
			}
		done
	}
	stop_pod() { # I: SIGTERM, as the kubelet stops a pod
		kv_stop "troupe-kv-$1"
		[ "$kv_status" -eq 0 ] || fail "troupe-kv-$1 exited with status $kv_status after SIGTERM"
	}

	# 2. Three pods.
	for i in 0 1 2; do
		pod "$i" "1$((i + 1))" "$dns"
	done
	formed troupe-kv-0 troupe-kv-1 troupe-kv-2 ||
		fail "three troupe-kv given TROUPE_DNS=$dns did not form a cluster of $size"
	echo "ok: troupe-kv-0..2 given TROUPE_DNS=$dns formed a cluster: members $size/$size, ready"

	# 3. troupe-kv-1 comes back on another address.
	stop_pod 1
	for n in troupe-kv-0 troupe-kv-2; do
		kv_wait "$n" 30 'troupe-kv-1 left' "${from[$n]}" >/dev/null ||
			fail "$n did not see troupe-kv-1 leave"
		from[$n]=$(kv_lines "$n")
	done
	dns_stop
	records 11 14 13 >"$tmp/hosts"
	dns_start
	pod 1 14 "$dns"
	formed troupe-kv-1 || fail "troupe-kv-1 on a new address did not rejoin"
	for n in troupe-kv-0 troupe-kv-2; do
		kv_wait "$n" 30 'troupe-kv-1 joined' "${from[$n]}" >/dev/null &&
			kv_wait "$n" 30 "members $size/$size" "${from[$n]}" >/dev/null ||
			fail "$n did not see troupe-kv-1 come back"
	done
	echo "ok: troupe-kv-1 on a new address rejoined the two others, ready"
	for i in 0 1 2; do stop_pod "$i"; done

	# 4. The full name.
	for i in 0 1 2; do
		pod "$i" "1$((i + 1))" "$fqdn:$port"
	done
	formed troupe-kv-0 troupe-kv-1 troupe-kv-2 ||
		fail "three troupe-kv given TROUPE_DNS=$fqdn:$port did not form a cluster"
	echo "ok: the full name $fqdn:$port works as well"
	for i in 0 1 2; do stop_pod "$i"; done
	dns_stop
	exit 0
fi

# ---- outside ----------------------------------------------------------------

ndns_unable() {
	skip "$*"
}

[ -x "$kv" ] || fail "no troupe-kv at $kv"
deploy_python yaml
read -r dns size < <("$python" -B - "$src/deploy/k8s/statefulset.yaml" <<'PY'
import sys, yaml
sts = yaml.safe_load(open(sys.argv[1]))
env = {e["name"]: e.get("value") for e in
       sts["spec"]["template"]["spec"]["containers"][0]["env"]}
print(env.get("TROUPE_DNS") or "-", env.get("TROUPE_CLUSTER_SIZE") or "-")
PY
)
[[ ${dns:-} =~ ^[a-z0-9-]+:[0-9]+$ ]] ||
	fail "the StatefulSet's TROUPE_DNS '${dns:-}' is not SHORT-NAME:PORT, which this test resolves"
[ "${size:-}" = 3 ] ||
	fail "the StatefulSet's TROUPE_CLUSTER_SIZE is '${size:-}': this test runs three pods"
echo "the StatefulSet's TROUPE_DNS: $dns, TROUPE_CLUSTER_SIZE: $size"

ndns_setup troupe-k8s-dns "$(printf '%s\n' \
	'search default.svc.cluster.local svc.cluster.local cluster.local' \
	'nameserver 198.18.0.53' \
	'options ndots:5 timeout:1 attempts:2')" 11 12 13 14
TT_K8S_DNS=$dns TT_K8S_SIZE=$size ndns_run_inside "$here/$(basename "${BASH_SOURCE[0]}")" "$kv" "$src"
