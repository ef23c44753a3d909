# A network namespace with a real DNS server in it, and test node processes
# that find each other through it: the shared part of the DNS discovery
# tests (test_node_dns_netns.sh, tests/deploy/test_k8s_dns.sh). Sourced,
# not run; bash.
#
# A test script runs twice: once outside, where it makes the namespace,
# and once inside it (ip netns exec), where it starts dnsmasq and the
# nodes. Outside:
#
#   ndns_setup PREFIX RESOLV_CONF ADDR...
#       Needs root, ip and dnsmasq: without them, or when the namespace
#       cannot be made, it calls ndns_unable MESSAGE, which fails (a
#       script may define its own before calling ndns_setup). Removes
#       what killed runs of the same PREFIX left, makes the namespace
#       PREFIX-$$ ($ndns_ns) with lo up and each 198.18.0.ADDR/32 on it,
#       writes RESOLV_CONF as its /etc/netns/NS/resolv.conf (which ip
#       netns exec puts in place of /etc/resolv.conf), makes a temporary
#       directory ($ndns_tmp) and sets an EXIT trap that removes all of
#       it, processes in the namespace included, on every exit path.
#   ndns_run_inside SCRIPT ARGS...
#       Runs bash SCRIPT ARGS in the namespace with TT_DNS_INNER=1 and
#       TT_DNS_TMP set; on failure prints the tails of the logs. Its
#       status is the script's.
#
# Inside (ndns_inner is true there), with $node_main the test node program
# (tests/dist/node_main.c) and $tmp the directory:
#
#   dns_start / dns_stop    dnsmasq on 198.18.0.53:53, no upstream, no
#                           /etc/hosts, answering from $tmp/hosts (a hosts
#                           file) and $tmp/records.conf (dnsmasq options:
#                           srv-host=, local=, ...). $tmp/hosts must name
#                           198.18.0.53 dns-ready.troupe.test (the
#                           readiness check asks for it).
#   node NAME URL [ENV=VALUE...]   a test node with cookie "secret", its
#                           output in $tmp/NAME.out; waits for READY.
#   nodes_of NAME           the nodes NAME is connected to, sorted.
#   wait_mesh NAMES...      each of NAMES sees exactly the others (20 s).
#   stop_node NAME, stop_nodes
#   fail MESSAGE            prints FAIL: MESSAGE and exits 1.

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ndns_inner() {
	[ "${TT_DNS_INNER:-}" = 1 ]
}

ndns_unable() {
	fail "$@"
}

# ---- outside: the namespace and its cleanup ----------------------------------

ndns_ns=""
ndns_tmp=""

ndns_cleanup() {
	local p
	if [ -n "$ndns_ns" ]; then
		for p in $(ip netns pids "$ndns_ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$ndns_ns" 2>/dev/null
		rm -rf "/etc/netns/$ndns_ns"
		rmdir /etc/netns 2>/dev/null # if no other namespace has one
	fi
	[ -n "$ndns_tmp" ] && rm -rf "$ndns_tmp"
}

ndns_setup() {
	local prefix=$1 resolv=$2 old p a
	shift 2
	[ "$(id -u)" -eq 0 ] || ndns_unable "needs root, for ip netns (the DNS test makes a network namespace)"
	command -v ip >/dev/null || ndns_unable "no ip command (iproute2)"
	command -v dnsmasq >/dev/null || ndns_unable "no dnsmasq (apt-get install dnsmasq-base; deploy/setup.sh does)"

	trap ndns_cleanup EXIT
	trap 'exit 1' INT TERM HUP

	# What a run killed before its cleanup left: namespaces of this
	# prefix whose script is gone.
	for old in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep "^$prefix-[0-9]*\$"); do
		kill -0 "${old#"$prefix"-}" 2>/dev/null && continue
		for p in $(ip netns pids "$old" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		ip netns del "$old" 2>/dev/null
		rm -rf "/etc/netns/$old"
	done

	ndns_tmp=$(mktemp -d "${TMPDIR:-/tmp}/$prefix-XXXXXX") || fail "mktemp"
	ndns_ns=$prefix-$$
	ip netns add "$ndns_ns" || { ndns_ns=""; ndns_unable "ip netns add $prefix-$$ failed (not allowed here?)"; }
	ip -n "$ndns_ns" link set lo up || fail "lo of $ndns_ns"
	for a in 53 "$@"; do
		ip -n "$ndns_ns" addr add "198.18.0.$a/32" dev lo || fail "address 198.18.0.$a"
	done
	mkdir -p "/etc/netns/$ndns_ns" || fail "/etc/netns/$ndns_ns"
	printf '%s\n' "$resolv" >"/etc/netns/$ndns_ns/resolv.conf"
}

ndns_run_inside() {
	local script=$1 rc f
	shift
	TT_DNS_INNER=1 TT_DNS_TMP=$ndns_tmp ip netns exec "$ndns_ns" bash "$script" "$@"
	rc=$?
	if [ $rc -ne 0 ]; then
		for f in "$ndns_tmp"/*.err "$ndns_tmp"/dnsmasq.log; do
			[ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
		done
	fi
	return $rc
}

# ---- inside: dnsmasq and the nodes -------------------------------------------

if ndns_inner; then
	tmp=$TT_DNS_TMP
	declare -A pid
	dnsmasq_pid=""
	: >"$tmp/records.conf"
fi

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

stop_node() {
	kill -9 "${pid[$1]}" 2>/dev/null
	wait "${pid[$1]}" 2>/dev/null
	unset "pid[$1]"
}

stop_nodes() {
	local n
	for n in "${!pid[@]}"; do
		stop_node "$n"
	done
	pid=()
}
