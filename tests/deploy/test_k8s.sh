#!/usr/bin/env bash
# The Kubernetes manifests (deploy/k8s), validated as far as a machine
# without a cluster can:
#
#   test_k8s.sh SOURCE_DIR
#
#   1. yamllint, strict, with tests/deploy/yamllint.yaml.
#   2. check_k8s.py: every object against the API's schema (the models of
#      Debian's python3-kubernetes), and the cross-references: the
#      StatefulSet's serviceName, selectors and labels, target ports,
#      TROUPE_* names of troupe-kv's contract and values that agree with
#      the ports, replicas equal to TROUPE_CLUSTER_SIZE, the cookie's
#      Secret, the probes, the image's user, securityContext, resources,
#      the NetworkPolicy, a PodDisruptionBudget that leaves a majority.
#   3. With a kubectl on the PATH, "kubectl kustomize" must build the set
#      and give exactly the objects kustomization.yaml lists (Debian 12's
#      kubectl, kubernetes-client 1.20, validates only against a server;
#      this step builds only). Without one, it says so and goes on.
#   4. The checker itself: each of a list of broken copies of the set
#      (a wrong serviceName, target port, DNS name, env name, cluster
#      size, a field that does not exist, ...) must fail, with the reason expected.
set -uo pipefail

src=${1:?usage: $0 SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

k8s=$src/deploy/k8s
cf=$src/deploy/container/Containerfile
[ -f "$k8s/kustomization.yaml" ] || fail "no $k8s/kustomization.yaml"
command -v yamllint >/dev/null || fail "no yamllint (apt-get install yamllint; deploy/setup.sh does)"
deploy_python yaml kubernetes

tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-k8s-XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

check() { # K8S_DIR CONTAINERFILE [BUILT]
	"$python" -B "$here/check_k8s.py" "$1" "$2" "$here/kv_env.txt" "${@:3}"
}

# 1. yamllint
yamllint -s -c "$here/yamllint.yaml" "$k8s" || fail "yamllint found problems in deploy/k8s (above)"
echo "ok: yamllint $(yamllint --version | awk '{ print $2 }'), strict: nothing to say"

# 2. + 3. the checker, on what kustomize builds when it can
built=()
if command -v kubectl >/dev/null; then
	if timeout 60 kubectl kustomize "$k8s" >"$tmp/built.yaml" 2>"$tmp/kustomize.err"; then
		built=("$tmp/built.yaml")
	else
		cat "$tmp/kustomize.err" >&2
		fail "kubectl kustomize $k8s failed"
	fi
else
	echo "kubectl kustomize: skipped (no kubectl on the PATH)"
fi
check "$k8s" "$cf" "${built[@]}" || fail "check_k8s.py found problems (above)"

# 4. broken copies: mutant NAME FILE PERL-EXPRESSION EXPECTED-REASON
mutants=0
mutant() {
	local name=$1 file=$2 expr=$3 want=$4 d=$tmp/$1
	mkdir -p "$d/k8s"
	cp "$k8s"/*.yaml "$d/k8s/"
	cp "$cf" "$d/Containerfile"
	local target=$d/k8s/$file orig=$k8s/$file
	if [ "$file" = Containerfile ]; then
		target=$d/Containerfile
		orig=$cf
	fi
	perl -0pi -e "$expr" "$target"
	cmp -s "$target" "$orig" && fail "mutant $name: $expr changed nothing"
	if check "$d/k8s" "$d/Containerfile" >"$d/out" 2>&1; then
		cat "$d/out" >&2
		fail "mutant $name passed the checker"
	fi
	grep -q "^FAIL: .*$want" "$d/out" || {
		cat "$d/out" >&2
		fail "mutant $name failed, but not for '$want'"
	}
	mutants=$((mutants + 1))
}
mutant servicename statefulset.yaml 's/serviceName: troupe-kv-nodes/serviceName: troupe-kv-node/' 'names no Service'
mutant notready service-nodes.yaml 's/publishNotReadyAddresses: true/publishNotReadyAddresses: false/' 'publishNotReadyAddresses'
mutant headless service-nodes.yaml 's/  clusterIP: None\n//' 'not headless'
mutant yaml service-nodes.yaml 's/clusterIP: None\n//' 'not YAML'
mutant targetport service-clients.yaml 's/targetPort: resp/targetPort: redis/' 'is no port of the container'
mutant selector service-clients.yaml 's/(selector:\n\s+app.kubernetes.io\/name:) troupe-kv/$1 troupe-kv-x/' 'selector does not match'
mutant dns statefulset.yaml 's/value: troupe-kv-nodes:7100/value: troupe-kv:7100/' 'TROUPE_DNS'
mutant listen statefulset.yaml 's/tcp:\/\/\$\(POD_IP\):7100/tcp:\/\/0.0.0.0:7100/' 'TROUPE_LISTEN'
mutant envname statefulset.yaml 's/name: TROUPE_RESP/name: TROUPE_REDIS/' "not in troupe-kv's contract"
mutant cookieenv statefulset.yaml 's/(- name: TROUPE_COOKIE_FILE)/- name: TROUPE_COOKIE\n              value: secret\n            $1/' 'TROUPE_COOKIE is set'
mutant field statefulset.yaml 's/podManagementPolicy:/podManagmentPolicy:/' "no field 'podManagmentPolicy'"
mutant type statefulset.yaml 's/containerPort: 7100/containerPort: "7100"/' 'an integer expected'
mutant required statefulset.yaml 's/- name: troupe-kv\n          image:/- image:/' 'must not be `None`'
mutant secret statefulset.yaml 's/secretName: troupe-kv-cookie/secretName: troupe-kv-secret/' "not the example's"
mutant mode statefulset.yaml 's/defaultMode: 0440/defaultMode: 0444/' "the cookie's mode"
mutant probe statefulset.yaml 's/readinessProbe:\n\s+exec:\n\s+command: \[troupe-kv-health, --ready\]/readinessProbe:\n            httpGet: {path: \/api\/ready, port: 8080}/' 'cannot reach an observer on loopback'
mutant readiness statefulset.yaml 's/command: \[troupe-kv-health, --ready\]/command: [troupe-kv-health]/' 'readinessProbe runs .*, not troupe-kv-health --ready'
mutant liveness statefulset.yaml 's/(livenessProbe:\n\s+exec:\n\s+command: \[troupe-kv-health)\]/$1, --ready]/' 'livenessProbe runs .*, not troupe-kv-health$'
mutant rootfs statefulset.yaml 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' 'readOnlyRootFilesystem'
mutant caps statefulset.yaml 's/drop: \[ALL\]/drop: [NET_RAW]/' 'ALL is not dropped'
mutant limits statefulset.yaml 's/memory: 1Gi/memory: 128Mi/' 'above its limit'
mutant user Containerfile 's/^USER 10001:10001$/USER 10002:10002/m' 'not the image.s USER'
mutant root Containerfile 's/^USER 10001:10001$/USER root/m' 'numeric non-root'
mutant unlisted kustomization.yaml 's/  - pdb.yaml\n//' 'does not list pdb.yaml'
mutant example kustomization.yaml 's/(resources:\n)/$1  - cookie-secret.example.yaml\n/' 'lists the example'
mutant namespace pdb.yaml 's/(  name: troupe-kv\n)/$1  namespace: default\n/' 'namespace is set'
mutant netpol networkpolicy.yaml 's/(- from:\n\s+- podSelector:)\n\s+matchLabels:\n\s+app.kubernetes.io\/name: troupe-kv/$1 {}/' 'open to more than the troupe-kv pods'
mutant netport networkpolicy.yaml 's/port: resp/port: redis/' 'is no port of the container'
mutant pdb pdb.yaml 's/maxUnavailable: 1/maxUnavailable: 2/' 'maxUnavailable'
mutant size statefulset.yaml 's/replicas: 3/replicas: 5/' 'but TROUPE_CLUSTER_SIZE is 3'
mutant sizeunset statefulset.yaml 's/ *- name: TROUPE_CLUSTER_SIZE\n *value: "3"\n//' 'TROUPE_CLUSTER_SIZE is not set'
mutant client statefulset.yaml 's/(- name: TROUPE_COOKIE_FILE)/- name: TROUPE_CLIENT\n              value: tcp:\/\/0.0.0.0:7200\n            $1/' 'TROUPE_CLIENT'
echo "ok: the checker refused each of $mutants broken copies, for the reason expected"
