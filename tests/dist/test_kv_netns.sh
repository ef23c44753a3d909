#!/usr/bin/env bash
# troupe-kv across hosts (docs/deploy.md, "What the tests check"): three
# hosts made of Linux network namespaces, joined by veth links to a bridge,
# one troupe-kv node on each, a client on a fourth; one host cut off the
# network past the failure-detection bound, then put back.
#
#   test_kv_netns.sh TROUPE_KV SOURCE_DIR
#
# The network, all of 198.19.7.0/24 (in 198.18.0.0/15, the range set
# aside for tests), nothing of it in the root namespace:
#
#   tkv<PID>c    the client's host: bridge br0 198.19.7.1, and the
#                bridge's ends h1, h2, h3 of the three veth links
#   tkv<PID>h1   eth0 198.19.7.11    node h1 (each node also has its
#   tkv<PID>h2   eth0 198.19.7.12    node h2  observer on 127.0.0.1:8080,
#   tkv<PID>h3   eth0 198.19.7.13    node h3  its namespace's loopback)
#
# What it checks, in phases:
#
#   before   the three nodes ready, every partition led and copied; the
#            Python client (kv_client.py load, through h1's client
#            endpoint, h2's if h1's does not answer) writes all along,
#            and redis-cli writes to each node in turn (a probe a node,
#            every 200 ms): every probe answered OK.
#   cut      the bridge's end of h3's link is set down. h1 and h2 see h3
#            leave within 3 s (4 heartbeat ticks of 250 ms, and slack),
#            and h3 sees them leave; h1 and h2 take over the partitions
#            h3 led and show 16 primaries of 16; h3, alone and without a
#            majority of 3, gives its partitions up, claims none of
#            the others' (when it lost both at the same tick: it never
#            saw a majority after the cut) and answers CLUSTERDOWN to a
#            SET from inside its own namespace; no probe from the
#            client's host reaches h3.
#   settled  (still cut) every probe of h1 and h2 answered OK.
#   heal     the link up again: within 15 s every node shows 3 members
#            and 16 primaries, h3 holds copies again and every partition
#            has its two copies.
#   after    every probe answered OK.
#
# Then the load stops and every write acknowledged (the client's and the
# probes') is read back through each of the three nodes (kv_check.py):
# none may be lost; and each node stops on SIGTERM with status 0 (and no
# sanitizer report). A summary gives the times measured and the writes
# and errors of each phase.
#
# Needs root (ip netns), network namespaces the kernel lets it make,
# redis-cli, openssl, protoc and Debian's /usr/bin/python3 with
# python3-protobuf: without them it says SKIP and exits 77. Every process
# in the namespaces is killed and the namespaces (with their links) are
# deleted on every exit path; TROUPE_TEST_KEEP=1 keeps the logs.
set -uo pipefail

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
net=198.19.7
port_resp=6379

# ---- the probe: runs in the client's namespace ------------------------------
#
# --probe NAME ADDR DIR: a redis-cli SET to ADDR every 200 ms until
# DIR/phase says stop; one line "PHASE RESULT" per probe in
# DIR/probe.NAME, and "key value" in DIR/probe-acked.NAME for each OK. A
# probe that began in one phase and ended in another is "across".
if [ "${1:-}" = --probe ]; then
	name=$2 addr=$3 dir=$4 i=0
	while :; do
		ph=$(cat "$dir/phase")
		[ "$ph" = stop ] && exit 0
		key=probe:$name:$i val=p$i-$$
		out=$(timeout 2 redis-cli -h "$addr" -p "$port_resp" SET "$key" "$val" 2>&1)
		rc=$?
		if [ $rc -eq 124 ]; then
			res=timeout
		elif [ "$out" = OK ]; then
			res=OK
			echo "$key $val" >>"$dir/probe-acked.$name"
		elif [[ $out == *"Could not connect"* ]]; then
			res=no-connection
		else
			res=${out%%$'\n'*}
			res=${res#"(error) "}
			res=${res%% *}
			[ -n "$res" ] || res=empty
		fi
		[ "$(cat "$dir/phase")" = "$ph" ] || ph=across
		echo "$ph $res" >>"$dir/probe.$name"
		i=$((i + 1))
		sleep 0.2
	done
fi

kv=${1:?usage: $0 TROUPE_KV SOURCE_DIR}
src=${2:?usage: $0 TROUPE_KV SOURCE_DIR}
PY=/usr/bin/python3

skip() {
	echo "SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root, for ip netns (the test makes four network namespaces)"
command -v ip >/dev/null || skip "no ip command (iproute2)"
for t in redis-cli openssl protoc timeout; do
	command -v "$t" >/dev/null || skip "no $t (bash deploy/setup.sh installs it)"
done
[ -x "$PY" ] || skip "no $PY"
"$PY" -c 'import google.protobuf' 2>/dev/null ||
	skip "$PY has no google.protobuf (Debian: apt-get install python3-protobuf)"
[ -x "$kv" ] || { echo "FAIL: no troupe-kv at $kv" >&2; exit 1; }

ns_c=tkv$$c
hosts=(h1 h2 h3)
declare -A ns=([h1]=tkv$$h1 [h2]=tkv$$h2 [h3]=tkv$$h3)
declare -A addr=([h1]=$net.11 [h2]=$net.12 [h3]=$net.13)
made=()
node_pids=()
tmp=""
keep=${TROUPE_TEST_KEEP:-}

ms() {
	local t=${EPOCHREALTIME//[.,]/}
	echo $((t / 1000))
}

# Stops the nodes (TERM: each stops its parser processes), then kills
# whatever else runs in the namespaces (TERM, then KILL after 2 s), reaps
# this script's children and deletes the namespaces: their veth ends go
# with them, and the bridge with the client's.
cleanup() {
	local n p left i
	[ -n "$tmp" ] && echo stop >"$tmp/phase" 2>/dev/null
	for p in "${node_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${node_pids[@]}"; do
		for ((i = 0; i < 60; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
	done
	for n in "${made[@]}"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
	done
	for ((i = 0; i < 40; i++)); do
		left=0
		for n in "${made[@]}"; do
			[ -n "$(ip netns pids "$n" 2>/dev/null)" ] && left=1
		done
		[ "$left" = 0 ] && break
		sleep 0.05
	done
	for n in "${made[@]}"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	wait 2>/dev/null
	for n in "${made[@]}"; do ip netns del "$n" 2>/dev/null; done
	if [ -n "$tmp" ]; then
		if [ -n "$keep" ]; then echo "logs kept in $tmp"; else rm -rf "$tmp"; fi
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	local h
	echo "FAIL: $*" >&2
	for h in "${hosts[@]}"; do
		[ -f "$tmp/$h.log" ] || continue
		echo "--- $h (last lines)" >&2
		grep -v proc_output "$tmp/$h.log" | tail -n 25 >&2
	done
	[ -f "$tmp/py.log" ] && { echo "--- python client" >&2; tail -n 10 "$tmp/py.log" >&2; }
	exit 1
}

# What runs killed before their cleanup left: namespaces tkv<PID><host>
# whose script is gone.
for old in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E '^tkv[0-9]+(c|h[123])$'); do
	p=${old#tkv}
	p=${p%c}
	p=${p%h[123]}
	kill -0 "$p" 2>/dev/null && continue
	for q in $(ip netns pids "$old" 2>/dev/null); do kill -KILL "$q" 2>/dev/null; done
	ip netns del "$old" 2>/dev/null
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tkv-netns.XXXXXX") || fail "mktemp"

# ---- the network ---------------------------------------------------------------

ip netns add "$ns_c" 2>"$tmp/netns.err" ||
	skip "ip netns add failed, network namespaces cannot be made here: $(head -c 200 "$tmp/netns.err")"
made+=("$ns_c")
ip netns exec "$ns_c" true 2>"$tmp/netns.err" ||
	skip "ip netns exec failed (no mount namespace here?): $(head -c 200 "$tmp/netns.err")"
for h in "${hosts[@]}"; do
	ip netns add "${ns[$h]}" || fail "ip netns add ${ns[$h]}"
	made+=("${ns[$h]}")
done
for n in "${made[@]}"; do
	ip -n "$n" link set lo up || fail "lo of $n"
done
ip -n "$ns_c" link add br0 type bridge || fail "bridge in $ns_c"
ip -n "$ns_c" addr add "$net.1/24" dev br0 || fail "address of br0"
ip -n "$ns_c" link set br0 up || fail "br0 up"
for h in "${hosts[@]}"; do
	ip -n "$ns_c" link add "$h" type veth peer name eth0 netns "${ns[$h]}" ||
		fail "veth link of $h"
	ip -n "$ns_c" link set "$h" master br0 up || fail "bridge end of $h"
	ip -n "${ns[$h]}" addr add "${addr[$h]}/24" dev eth0 || fail "address of $h"
	ip -n "${ns[$h]}" link set eth0 up || fail "eth0 of $h up"
done

# ---- the nodes -----------------------------------------------------------------

openssl rand -hex 32 >"$tmp/cookie" || fail "openssl rand"
chmod 600 "$tmp/cookie"
seeds="tcp://${addr[h1]}:7100,tcp://${addr[h2]}:7100,tcp://${addr[h3]}:7100"
for h in "${hosts[@]}"; do
	ip netns exec "${ns[$h]}" env TROUPE_SEEDS="$seeds" TROUPE_TICK_MS=250 \
		TROUPE_COOKIE_FILE="$tmp/cookie" "$kv" --name "$h" \
		--listen "tcp://${addr[$h]}:7100" --resp "${addr[$h]}:$port_resp" \
		--client "tcp://${addr[$h]}:7200" --observer 127.0.0.1:8080 \
		--schedulers 1 >"$tmp/$h.log" 2>&1 &
	node_pids+=($!)
done

lines() { wc -l <"$tmp/$1.log"; }

# status H FROM: H's last status line after line FROM of its log.
status() {
	tail -n "+$(($2 + 1))" "$tmp/$1.log" | grep "^kv $1: members " | tail -n 1
}
# num FIELD LINE: the number after FIELD in a status line.
num() {
	sed -n "s/.*[ ,]$1 \([0-9]*\).*/\1/p" <<<"$2"
}
# has H FROM TEXT: H's log has a line with TEXT after line FROM.
has() {
	tail -n "+$(($2 + 1))" "$tmp/$1.log" | grep -qF -- "$3"
}

for h in "${hosts[@]}"; do
	for ((i = 0; i < 600; i++)); do
		grep -q ": ready$" "$tmp/$h.log" && break
		sleep 0.05
	done
	grep -q ": ready$" "$tmp/$h.log" || fail "$h was not ready within 30 s"
done
echo "ok: h1, h2 and h3 ready, each in its own network namespace"

# Settled: each shows 3 members and 16 primaries, and every partition has
# its replica (16 copies over the three).
settled() { # FROM_H1 FROM_H2 FROM_H3
	local h s copies=0
	for h in "${hosts[@]}"; do
		s=$(status "$h" "${1:-0}")
		[[ $s == *"members 3/3, primaries 16/16"* ]] || return 1
		copies=$((copies + $(num copies "$s")))
		shift
	done
	[ "$copies" -eq 16 ]
}
for ((i = 0; i < 200; i++)); do
	settled 0 0 0 && break
	sleep 0.1
done
settled 0 0 0 || fail "the cluster did not settle (3 members, 16 primaries, 16 copies) within 20 s"
echo "ok: 3 members, 16 primaries, 16 copies"

# ---- the load ------------------------------------------------------------------

echo before >"$tmp/phase"
: >"$tmp/acked.txt"
ip netns exec "$ns_c" env TROUPE_PROTO_DIR="$src/proto" TROUPE_CLIENT_CACHE="$tmp/pycache" \
	"$PY" "$src/samples/kv/client/kv_client.py" \
	--url "tcp://${addr[h1]}:7200" --node h1 --url "tcp://${addr[h2]}:7200" --node h2 \
	--cookie-file "$tmp/cookie" load --seconds 600 --keys-file "$tmp/acked.txt" \
	--prefix netns >"$tmp/py.log" 2>&1 &
py_pid=$!
probe_pids=()
for h in "${hosts[@]}"; do
	: >"$tmp/probe.$h"
	: >"$tmp/probe-acked.$h"
	ip netns exec "$ns_c" bash "$self" --probe "$h" "${addr[$h]}" "$tmp" &
	probe_pids+=($!)
done

# The phases' bounds: lines of py.log and acked.txt when each began.
phases=(before cut settled heal after)
declare -A py_from=() ack_from=()
phase() {
	py_from[$1]=$(wc -l <"$tmp/py.log")
	ack_from[$1]=$(wc -l <"$tmp/acked.txt")
	echo "$1" >"$tmp/phase"
}
phase before
for ((i = 0; i < 100; i++)); do
	[ "$(wc -l <"$tmp/acked.txt")" -gt 0 ] && break
	sleep 0.1
done
[ "$(wc -l <"$tmp/acked.txt")" -gt 0 ] || fail "the Python client got no write acknowledged in 10 s"
sleep 4

# ---- the cut -------------------------------------------------------------------

led3=$(num leads "$(status h3 0)")
# The link goes down before the phase begins, and comes up after it
# ends: a probe of the phase "cut" or "settled" ran all the while cut.
declare -A from=()
for h in "${hosts[@]}"; do from[$h]=$(lines "$h"); done
t_cut=$(ms)
ip -n "$ns_c" link set h3 down || fail "link down"
phase cut
echo "cut: h3's link is down (h3 led $led3 partitions)"

# Who sees whom leave, and when (ms after the cut).
declare -A det=()
seen_left=(h1:h3 h2:h3 h3:h1 h3:h2)
while [ $(($(ms) - t_cut)) -lt 10000 ] && [ ${#det[@]} -lt 4 ]; do
	for w in "${seen_left[@]}"; do
		[ -n "${det[$w]:-}" ] && continue
		has "${w%%:*}" "${from[${w%%:*}]}" ": ${w#*:} left (" &&
			det[$w]=$(($(ms) - t_cut))
	done
	sleep 0.02
done
fmt() { # ms as seconds
	[ -n "${1:-}" ] && printf '%d.%02d' $(($1 / 1000)) $((($1 % 1000) / 10)) || echo never
}
fails=0
check() { # OK|FAIL TEXT
	if [ "$1" = OK ]; then echo "ok: $2"; else echo "FAIL: $2" >&2; fails=$((fails + 1)); fi
}
bound=3000
for w in h1:h3 h2:h3; do
	d=${det[$w]:-}
	if [ -n "$d" ] && [ "$d" -le $bound ]; then
		check OK "${w%%:*} saw ${w#*:} leave $(fmt "$d") s after the cut (bound 3 s)"
	else
		check FAIL "${w%%:*} saw ${w#*:} leave after $(fmt "$d") s (bound 3 s)"
	fi
done
for w in h3:h1 h3:h2; do
	d=${det[$w]:-}
	[ -n "$d" ] && [ "$d" -le $bound ] &&
		check OK "h3 saw ${w#*:} leave $(fmt "$d") s after the cut" ||
		check FAIL "h3 saw ${w#*:} leave after $(fmt "$d") s (bound 3 s)"
done
reason=$(tail -n "+$((from[h1] + 1))" "$tmp/h1.log" | grep -m1 -o ': h3 left ([^)]*)' | sed 's/^: //')

# h1 and h2 lead all 16 again; h3 leads nothing and answers CLUSTERDOWN.
t_maj=""
t_alone=""
while [ $(($(ms) - t_cut)) -lt 15000 ]; do
	if [ -z "$t_maj" ]; then
		s1=$(status h1 "${from[h1]}")
		s2=$(status h2 "${from[h2]}")
		[[ $s1 == *"members 2/3, primaries 16/16"* && $s2 == *"members 2/3, primaries 16/16"* ]] &&
			t_maj=$(($(ms) - t_cut))
	fi
	if [ -z "$t_alone" ]; then
		s3=$(status h3 "${from[h3]}")
		[[ $s3 == *"members 1/3,"* ]] && [ "$(num leads "$s3")" = 0 ] &&
			[ "$(num copies "$s3")" = 0 ] && t_alone=$(($(ms) - t_cut))
	fi
	[ -n "$t_maj" ] && [ -n "$t_alone" ] && break
	sleep 0.1
done
takeovers=$(( $(tail -n "+$((from[h1] + 1))" "$tmp/h1.log" | grep -c 'took over as primary') +
	$(tail -n "+$((from[h2] + 1))" "$tmp/h2.log" | grep -c 'took over as primary') ))
gaveup=$(tail -n "+$((from[h3] + 1))" "$tmp/h3.log" | grep -c 'gives up the partition')
claimed3=$(tail -n "+$((from[h3] + 1))" "$tmp/h3.log" | grep -c 'primary down .*: claiming it')
# When h3's node layer declared h1 and h2 down at the same tick, h3 never
# saw a majority after the cut, and a replica of h3 that claimed a
# partition did so on a stale view. Apart by a tick, h3 saw h1 and h2 for
# a moment and may claim in that moment (it gives up after).
down_apart=$(tail -n "+$((from[h3] + 1))" "$tmp/h3.log" |
	grep -E 'NODE h3: node h[12] is down' | head -n 2 |
	awk '{ split(substr($1, 12, 15), t, ":"); s[NR] = t[1] * 3600 + t[2] * 60 + t[3] }
	END { d = s[2] - s[1]; if (d < 0) d = -d; printf "%d", d * 1000 }')
[ -n "$t_maj" ] &&
	check OK "h1 and h2 show 2 members and 16 primaries $(fmt "$t_maj") s after the cut ($takeovers takeovers)" ||
	check FAIL "h1 and h2 did not reach 16 primaries within 15 s of the cut (h1: $(status h1 "${from[h1]}"); h2: $(status h2 "${from[h2]}"))"
[ "$takeovers" -eq "$led3" ] &&
	check OK "the $led3 partitions h3 led were taken over by h1 and h2" ||
	check FAIL "h3 led $led3 partitions, h1 and h2 took over $takeovers"
[ -n "$t_alone" ] && [ "$gaveup" -ge "$led3" ] &&
	check OK "h3, alone, gave up its $led3 partitions and holds nothing ($(fmt "$t_alone") s after the cut)" ||
	check FAIL "h3 did not give up everything: $gaveup given up of $led3 led; $(status h3 "${from[h3]}")"
if [ "$claimed3" -eq 0 ]; then
	check OK "h3 claimed nothing while cut off"
elif [ "${down_apart:-0}" -lt 125 ]; then
	check FAIL "h3 lost h1 and h2 at the same tick ($down_apart ms apart) and still claimed $claimed3 partitions: $(tail -n "+$((from[h3] + 1))" "$tmp/h3.log" | grep -m 3 'claiming it' | tr '\n' ';')"
else
	echo "note: h3 lost h1 and h2 $down_apart ms apart, and claimed $claimed3 partitions in between"
fi
out=$(ip netns exec "${ns[h3]}" timeout 5 redis-cli -h "${addr[h3]}" -p "$port_resp" SET netns:alone x 2>&1)
[[ $out == CLUSTERDOWN* ]] &&
	check OK "h3 answers a SET from its own host with CLUSTERDOWN" ||
	check FAIL "h3 answered a SET from its own host with: $out"

phase settled
sleep 3

# ---- the heal ------------------------------------------------------------------

phase heal
for h in "${hosts[@]}"; do from[$h]=$(lines "$h"); done
t_heal=$(ms)
ip -n "$ns_c" link set h3 up || fail "link up"
echo "heal: h3's link is up"
t_conv=""
t_join=""
while [ $(($(ms) - t_heal)) -lt 15000 ]; do
	[ -z "$t_join" ] && has h1 "${from[h1]}" ": h3 joined" && has h2 "${from[h2]}" ": h3 joined" &&
		has h3 "${from[h3]}" ": h1 joined" && has h3 "${from[h3]}" ": h2 joined" &&
		t_join=$(($(ms) - t_heal))
	if settled "${from[h1]}" "${from[h2]}" "${from[h3]}" &&
		[ "$(num copies "$(status h3 "${from[h3]}")")" -gt 0 ]; then
		t_conv=$(($(ms) - t_heal))
		break
	fi
	sleep 0.1
done
copies3=$(num copies "$(status h3 "${from[h3]}")")
after_heal() { # TEXT: lines with TEXT in the three logs since the heal
	local h c=0
	for h in "${hosts[@]}"; do
		c=$((c + $(tail -n "+$((from[$h] + 1))" "$tmp/$h.log" | grep -cF -- "$1")))
	done
	echo "$c"
}
[ -n "$t_join" ] &&
	check OK "h3 and the others saw each other again $(fmt "$t_join") s after the heal" ||
	check FAIL "h3 and the others did not all see each other join within 15 s"
[ -n "$t_conv" ] &&
	check OK "converged $(fmt "$t_conv") s after the heal: 3 members, 16 primaries and 16 copies on each view, h3 holding ${copies3:-0}" ||
	check FAIL "no convergence within 15 s of the heal: h1: $(status h1 "${from[h1]}"); h2: $(status h2 "${from[h2]}"); h3: $(status h3 "${from[h3]}"); since the heal, $(after_heal ' left (') nodes seen leaving and $(after_heal 'gives up the partition') partitions given up for want of a majority"

phase after
sleep 4

# ---- the end: every acknowledged write read back ----------------------------

echo stop >"$tmp/phase"
kill -TERM "$py_pid" 2>/dev/null
wait "$py_pid"
py_status=$?
for p in "${probe_pids[@]}"; do wait "$p"; done
ack_from[end]=$(wc -l <"$tmp/acked.txt")
py_from[end]=$(wc -l <"$tmp/py.log")
[ "$py_status" = 0 ] && check OK "the Python client ran to the end" ||
	check FAIL "the Python client stopped with status $py_status: $(tail -n 1 "$tmp/py.log")"

lost=0
for h in "${hosts[@]}"; do
	ip netns exec "$ns_c" "$PY" "$src/samples/kv/client/kv_check.py" "${addr[$h]}:$port_resp" \
		"$tmp/acked.txt" "$tmp"/probe-acked.* >"$tmp/check.$h" 2>&1
	rc=$?
	sed "s/^check: /  $h: /" "$tmp/check.$h" | head -n 6
	[ $rc -eq 0 ] || lost=1
done
[ $lost = 0 ] && check OK "no acknowledged write lost: all read back through h1, h2 and h3" ||
	check FAIL "acknowledged writes are missing"

# The probes: every one OK where the cluster is whole, and on h1 and h2
# once they had taken over; none reaches h3 while it is cut off.
probes() { # HOST PHASE: "RESULT COUNT, ..." of its probes in that phase
	awk -v p="$2" '$1 == p { n[$2]++ } END { for (r in n) printf "%s%s %d", (k++ ? ", " : ""), r, n[r] }' "$tmp/probe.$1"
}
not_ok() { # HOST PHASE: probes not answered OK
	awk -v p="$2" '$1 == p && $2 != "OK" { n++ } END { print n + 0 }' "$tmp/probe.$1"
}
bad=""
for ph in before after; do
	for h in "${hosts[@]}"; do
		[ "$(not_ok "$h" "$ph")" = 0 ] || bad="$bad $h/$ph: $(probes "$h" "$ph");"
	done
done
for h in h1 h2; do
	[ "$(not_ok "$h" settled)" = 0 ] || bad="$bad $h/settled: $(probes "$h" settled);"
done
[ -z "$bad" ] && check OK "every redis-cli probe answered OK before the cut, after the takeovers and after the heal" ||
	check FAIL "probes not answered OK:$bad"
reached=$(awk '($1 == "cut" || $1 == "settled") && $2 == "OK"' "$tmp/probe.h3" | wc -l)
[ "$reached" = 0 ] && check OK "no probe from the client's host reached h3 while it was cut off" ||
	check FAIL "$reached probes reached h3 while it was cut off"

# Each node stops on SIGTERM with status 0, and no sanitizer spoke (in
# a build with one).
restarts=$(cat "$tmp"/h[123].log | grep -c 'parser process down')
for p in "${node_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
stopped=""
for i in 0 1 2; do
	h=${hosts[$i]}
	p=${node_pids[$i]}
	for ((k = 0; k < 200; k++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.05
	done
	wait "$p"
	rc=$?
	[ "$rc" = 0 ] || stopped="$stopped $h: status $rc;"
	grep -qE 'ERROR: [A-Za-z]*Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$tmp/$h.log" &&
		stopped="$stopped $h: a sanitizer report in its log;"
done
node_pids=()
[ -z "$stopped" ] && check OK "each node stopped on SIGTERM with status 0" ||
	check FAIL "the nodes did not stop cleanly:$stopped"

# ---- the summary ---------------------------------------------------------------

echo
echo "==== summary ===="
echo "detection: h1 saw h3 leave after $(fmt "${det[h1:h3]:-}") s, h2 after $(fmt "${det[h2:h3]:-}") s, h3 saw h1 and h2 after $(fmt "${det[h3:h1]:-}") and $(fmt "${det[h3:h2]:-}") s (${reason:-?}; bound 3 s: 4 ticks of 250 ms and slack)"
echo "takeover: h1 and h2 led all 16 partitions $(fmt "$t_maj") s after the cut ($takeovers taken over); h3 gave up $gaveup, claimed $claimed3"
echo "parser processes restarted while the test ran: $restarts (one silent for 4 ticks is restarted; on a loaded machine it happens)"
echo "heal: members again after $(fmt "$t_join") s, converged after $(fmt "$t_conv") s (h3 holding ${copies3:-0} copies)"
"$PY" - "$tmp/py.log" "${phases[@]}" -- \
	"${py_from[before]}" "${py_from[cut]}" "${py_from[settled]}" "${py_from[heal]}" \
	"${py_from[after]}" "${py_from[end]}" -- \
	"${ack_from[before]}" "${ack_from[cut]}" "${ack_from[settled]}" "${ack_from[heal]}" \
	"${ack_from[after]}" "${ack_from[end]}" <<'EOF'
import collections, re, sys
a = sys.argv[1:]
log = a[0]
i = a.index("--")
names = a[1:i]
j = a.index("--", i + 1)
lb = [int(x) for x in a[i + 1:j]]
ab = [int(x) for x in a[j + 1:]]
lines = open(log, errors="replace").read().splitlines()
pat = re.compile(r"^py-client: \d+ ok/s, (\d+) errors \((.*)\)$")
for k, name in enumerate(names):
    errs = collections.Counter()
    for line in lines[lb[k]:lb[k + 1]]:
        m = pat.match(line)
        if not m or m.group(1) == "0":
            continue
        for part in m.group(2).split("; "):
            r, _, n = part.rpartition(": ")
            errs[r] += int(n)
    why = "; ".join("%s: %d" % rn for rn in errs.most_common())
    print("python client, %-8s %6d writes acked, %d errors%s" %
          (name + ":", ab[k + 1] - ab[k], sum(errs.values()),
           " (%s)" % why if why else ""))
EOF
grep -E 'py-client: (done|stopped|gave up)' "$tmp/py.log" | sed 's/^py-client: /python client, in all: /'
for h in "${hosts[@]}"; do
	line="redis-cli probes of $h:"
	for ph in "${phases[@]}" across; do
		r=$(probes "$h" "$ph")
		line="$line $ph: ${r:-none};"
	done
	echo "${line%;}"
done

[ "$fails" -eq 0 ] || fail "$fails checks failed"
echo "PASS: troupe-kv across three network namespaces"
exit 0
