#!/usr/bin/env bash
# Compares troupe-bench with the Erlang/OTP and CAF peer benchmarks: every
# workload runs K times on each system, round-robin (one run of each system,
# then the next round), and the median of each is printed
# with the ratio troupe / peer and the project's target for that workload.
# Medians, because a single run on a shared machine says little.
#
#   samples/bench/compare.sh [TROUPE_BENCH [PEER_SH]]
#
# Environment (the arguments win over TROUPE_BENCH and PEER_SH):
#   TROUPE_BENCH  the troupe-bench binary      (build/samples/troupe-bench)
#   PEER_SH       the peer script              (../shared/bench/peer.sh)
#   K             runs per workload and system (5)
#   PEERS         peers to run                 ("erlang caf")
#   WORKLOADS     workloads to run             ("pingpong ring spawn fanin idle
#                                               sup-restart skynet fjcreate
#                                               remote-pingpong
#                                               remote-stream remote-flood
#                                               cluster-form global-register
#                                               global-lookup pg-join pg-dispatch
#                                               pg-dispatch-local proc-restart
#                                               proc-restart-gap
#                                               proc-restart-warm proc-call")
#   TROUPE_OPTS   troupe-bench options         ("-s 2": the peer script limits
#                                               both peers to 2 schedulers)
#
# skynet (a 10-ary tree of 1,111,111 actors summing their leaves' indexes)
# and fjcreate (Savina's fork-join create: a million actors, one message
# each) have their Erlang twin in samples/bench/peers/tree_bench.erl, run
# here with erl +S 2; CAF has none.
#
# sup-restart is not a workload of the peer script: its Erlang twin,
# samples/bench/peers/sup_restart.erl, is compiled into a temporary directory
# and run here with erl +S 2, when erlc and erl are on the PATH. CAF has no
# supervisors, so it has no figure for that row.
#
# remote-flood floods a slow actor of another node (2 us of work per
# message): besides its rate, the row below it gives the receiving
# process's peak resident memory, which is what the workload is about. Its
# Erlang twin, samples/bench/peers/remote_flood.erl, is run here (two BEAM
# nodes, erl +S 2), as sup_restart.erl is.
#
# cluster-form times 5 node processes on 127.0.0.1 that each connect to
# one seed until all are fully meshed (its ops/s is 5 / the formation
# time), and the row below it the time until the survivors see a node
# killed with SIGKILL go. Its Erlang twin, samples/bench/peers/
# cluster_form.erl, starts 5 BEAM nodes with peer and is run here.
#
# global-register and global-lookup run on a cluster of three node
# processes (troupe-bench starts the two others itself); their Erlang twin,
# samples/bench/peers/global_bench.erl, starts two peer BEAM nodes (the
# peer module, OTP 25) and is run here as sup_restart.erl is.
#
# pg-join, pg-dispatch and pg-dispatch-local are process groups between
# two node processes (troupe-bench starts the second one itself): N
# join + leave pairs in a group of the default scope, each sent on to the
# peer (the row below gives the time until the peer has the last change),
# and N round-robin sends to 8 members on the 2 nodes, or to the 4 local
# ones. Their Erlang twin, samples/bench/peers/pg_bench.erl, starts the
# second BEAM node with peer (both erl +S 2) and is run here.
#
# proc-restart is the restart rate of a process child (an OS process)
# that exits with status 1 as soon as it runs, and proc-call the rate of
# sequential calls to an actor in a process child; the row below it gives
# the same calls to a local actor. Their Erlang twin, samples/bench/peers/
# proc_restart.erl (a supervisor restarting the owner of a port to
# /bin/false; calls to a gen_server on a peer node), is run here with
# erl +S 2. CAF has no figure for them. proc-restart-gap and
# proc-restart-warm time a restart from the crash of a child that lives
# 20 ms (the second keeps a process warm, tr_proc_spec.warm): the row
# below gives the median restart in microseconds (ratio peer / troupe),
# their ops/s is one over the mean restart. Their twin is the same
# script's restart of a port owner whose program writes the time and
# exits 20 ms after its start (Erlang has no warm ports: one twin).
#
# remote-pingpong and remote-stream run between two node processes on
# 127.0.0.1 (troupe-bench starts the second one itself; the peer script starts
# two BEAM nodes). They need a troupe-bench built with the transport, and CAF
# has no twin of them.
set -uo pipefail

bench="${1:-${TROUPE_BENCH:-build/samples/troupe-bench}}"
peer="${2:-${PEER_SH:-../shared/bench/peer.sh}}"
k="${K:-5}"
peers="${PEERS:-erlang caf}"
all_workloads="pingpong ring spawn fanin idle sup-restart skynet fjcreate"
all_workloads+=" remote-pingpong remote-stream remote-flood cluster-form"
all_workloads+=" global-register global-lookup"
all_workloads+=" pg-join pg-dispatch pg-dispatch-local"
all_workloads+=" proc-restart proc-restart-gap proc-restart-warm proc-call"
workloads="${WORKLOADS:-$all_workloads}"
topts="${TROUPE_OPTS--s 2}"

usage() {
	echo "usage: $0 [TROUPE_BENCH [PEER_SH]]   (see the comment at the top)" >&2
	exit 2
}
[ $# -le 2 ] || usage
[ -x "$bench" ] || { echo "$0: no troupe-bench at $bench" >&2; usage; }
[ -f "$peer" ] || { echo "$0: no peer script at $peer" >&2; usage; }
case "$k" in '' | *[!0-9]* | 0) echo "$0: K must be a positive integer" >&2; exit 2 ;; esac

# The parameters of the issue's targets.
params() {
	case "$1" in
	pingpong) echo 1000000 ;;
	ring) echo 1000 10000000 ;;
	spawn) echo 1000000 ;;
	fanin) echo 2 2000000 ;;
	idle) echo 1000000 ;;
	sup-restart) echo 20000 ;;
	skynet | fjcreate) echo 1000000 ;;
	remote-pingpong) echo 20000 ;;
	remote-stream) echo 1000000 ;;
	remote-flood) echo 1000000 ;;
	cluster-form) echo 5 ;;
	global-register) echo 2000 ;;
	global-lookup) echo 10000000 ;;
	pg-join) echo 200000 ;;
	pg-dispatch | pg-dispatch-local) echo 1000000 ;;
	proc-restart) echo 2000 ;;
	proc-restart-gap | proc-restart-warm) echo 200 ;;
	proc-call) echo 100000 ;;
	*) return 1 ;;
	esac
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
beams=""
trap '[ -z "$beams" ] || rm -rf "$beams"' EXIT

# Whether system $1 has a twin of workload $2 (else its row shows "-").
has_workload() {
	case "$1,$2" in
	troupe,remote-*) "$bench" -h | grep -q remote-pingpong ;;
	troupe,cluster-form) "$bench" -h | grep -q cluster-form ;;
	troupe,global-*) "$bench" -h | grep -q global-register ;;
	erlang,global-*)
		command -v erlc >/dev/null && command -v erl >/dev/null ;;
	*,global-*) return 1 ;;
	troupe,pg-*) "$bench" -h | grep -q pg-join ;;
	troupe,proc-*) "$bench" -h | grep -q proc-restart ;;
	troupe,*) return 0 ;;
	erlang,sup-restart | erlang,remote-flood | erlang,cluster-form | \
	erlang,pg-* | erlang,proc-* | erlang,skynet | erlang,fjcreate)
		command -v erlc >/dev/null && command -v erl >/dev/null ;;
	*,sup-restart | *,remote-flood | *,cluster-form | *,pg-* | *,proc-* | \
	*,skynet | *,fjcreate)
		return 1 ;;
	caf,remote-*) return 1 ;;
	*) return 0 ;;
	esac
}

# Builds the Erlang twin of sup-restart into a temporary directory, once.
# Called from the main shell, not from one_run's command substitution, so
# that $beams (and the trap that removes it) see the directory.
build_erl_peer() {
	[ -z "$beams" ] || return 0
	beams=$(mktemp -d) || return 1
	erlc -o "$beams" "$here/peers/sup_restart.erl" \
	    "$here/peers/remote_flood.erl" "$here/peers/cluster_form.erl" \
	    "$here/peers/global_bench.erl" "$here/peers/pg_bench.erl" \
	    "$here/peers/proc_restart.erl" "$here/peers/tree_bench.erl"
}

# skynet's and fjcreate's twin (peers/tree_bench.erl).
erl_tree() {
	erl -noshell +S 2 +P 10000000 -pa "$beams" \
	    -eval "tree_bench:main(['$1', '$2']), init:stop()."
}

erl_sup_restart() {
	erl -noshell +S 2 -pa "$beams" \
	    -eval "sup_restart:main(['$1']), init:stop()."
}

# remote-flood's twin: a server node with the slow process, and a client.
erl_remote_flood() {
	local srv="troupe_flood_srv_$$" srvpid out
	erl -noshell +S 2 -sname "$srv" -setcookie troupeflood -pa "$beams" \
	    -s remote_flood serve &
	srvpid=$!
	sleep 2
	out=$(erl -noshell +S 2 -sname "troupe_flood_cli_$$" \
	    -setcookie troupeflood -pa "$beams" \
	    -eval "remote_flood:main(['$1', '$srv']), init:stop()." 2>&1)
	kill "$srvpid" 2>/dev/null
	wait "$srvpid" 2>/dev/null
	printf '%s\n' "$out"
}

# cluster-form's twin: 5 BEAM nodes started with peer.
erl_cluster_form() {
	erl -noshell -pa "$beams" -eval "cluster_form:main(['$1']), init:stop()."
}

# global-register and global-lookup's twin: this node and two peers.
erl_global() {
	erl -noshell +S 2 -sname "troupe_global_$$" -setcookie troupeglobal \
	    -pa "$beams" -eval "global_bench:main(['$1', '$2']), init:stop()."
}

# The pg workloads' twin: this node and a peer started with peer.
erl_pg() {
	erl -noshell +S 2 -sname "troupe_pg_$$" -pa "$beams" \
	    -eval "pg_bench:main(['$1', '$2']), init:stop()."
}

# The process-child workloads' twin (proc-call starts a peer node).
erl_proc() {
	erl -noshell +S 2 -sname "troupe_proc_$$" -pa "$beams" \
	    -eval "proc_restart:main(['$1', '$2']), init:stop()."
}

# One run: prints "<ops/s> <second figure or ->", or fails (the second
# figure is bytes_per_actor, a peak, a time or local-call's rate).
one_run() {
	local sys=$1 w=$2 out ops bytes
	shift 2
	if [ "$sys" = troupe ]; then
		# shellcheck disable=SC2086 # TROUPE_OPTS is a list of options
		out=$("$bench" $topts "$w" "$@" 2>&1) || return 1
	elif [ "$w" = sup-restart ]; then
		out=$(erl_sup_restart "$@" 2>&1) || return 1
	elif [ "$w" = skynet ] || [ "$w" = fjcreate ]; then
		out=$(erl_tree "$w" "$@" 2>&1) || return 1
	elif [ "$w" = remote-flood ]; then
		out=$(erl_remote_flood "$@") || return 1
	elif [ "$w" = cluster-form ]; then
		out=$(erl_cluster_form "$@" 2>&1) || return 1
	elif [ "$w" = global-register ] || [ "$w" = global-lookup ]; then
		out=$(erl_global "$w" "$@" 2>&1) || return 1
	elif [ "${w#pg-}" != "$w" ]; then
		out=$(erl_pg "$w" "$@" 2>&1) || return 1
	elif [ "${w#proc-}" != "$w" ]; then
		out=$(erl_proc "$w" "$@" 2>&1) || return 1
	else
		out=$(bash "$peer" "$sys" "$w" "$@" 2>&1) || return 1
	fi
	ops=$(awk -v w="$w" '$1 == w && $3 == "ops" && $NF == "ops/s" { print $(NF - 1) }' <<<"$out")
	bytes=$(awk '$1 == "bytes_per_actor" { print $2 }
		$1 == "remote-flood" && $2 == "receiver_rss_kb" { print $5 }
		$1 == "cluster-form" && $2 == "formed_ms" { print $5 }
		$1 == "pg-join" && $2 == "converge_ms" { print $3 }
		$2 == "latency_us" && $3 == "p50" { print $4 }
		$1 == "local-call" && $3 == "ops" && $NF == "ops/s" { print $(NF - 1) }' <<<"$out")
	[ -n "$ops" ] || return 1
	echo "$ops ${bytes:--}"
}

# The median of numbers on stdin, one a line ("-" when there are none).
median() {
	sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : "-" }'
}

declare -A ops bytes runs_o runs_b
for w in $workloads; do
	args=$(params "$w") || { echo "$0: unknown workload $w" >&2; exit 2; }
	systems=""
	for sys in troupe $peers; do
		if ! has_workload "$sys" "$w" ||
			{ { [ "$sys,$w" = erlang,sup-restart ] ||
			[ "$sys,$w" = erlang,remote-flood ] ||
			[ "$sys,$w" = erlang,cluster-form ] ||
			[ "$sys,$w" = erlang,global-register ] ||
			[ "$sys,$w" = erlang,global-lookup ] ||
			[ "$sys,$w" = erlang,skynet ] ||
			[ "$sys,$w" = erlang,fjcreate ] ||
			{ [ "$sys" = erlang ] && [ "${w#pg-}" != "$w" ]; } ||
			{ [ "$sys" = erlang ] && [ "${w#proc-}" != "$w" ]; }; } &&
			! build_erl_peer; }; then
			ops[$sys,$w]=- bytes[$sys,$w]=-
			continue
		fi
		systems+=" $sys"
		runs_o[$sys]="" runs_b[$sys]=""
	done
	# Round-robin: run i of every system, then run i + 1, so that a
	# machine that gets slower or faster during the series weighs on
	# every system alike.
	for ((i = 1; i <= k; i++)); do
		for sys in $systems; do
			# shellcheck disable=SC2086 # args is a list of numbers
			if r=$(one_run "$sys" "$w" $args); then
				runs_o[$sys]+="${r% *}"$'\n'
				[ "${r#* }" = - ] || runs_b[$sys]+="${r#* }"$'\n'
				echo "  $sys $w $args: run $i: ${r% *} ops/s" >&2
			else
				echo "  $sys $w $args: run $i FAILED" >&2
			fi
		done
	done
	for sys in $systems; do
		ops[$sys,$w]=$(printf '%s' "${runs_o[$sys]}" | grep . | median)
		bytes[$sys,$w]=$(printf '%s' "${runs_b[$sys]}" | grep . | median)
	done
done

# ratio A B: A / B to one decimal, or "-" when either is missing.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-"
		else printf "%.1fx\n", a / b }'
}

# target W: whether troupe meets the issue's target for W.
target() {
	local w=$1
	local t=${ops[troupe,$w]} e=${ops[erlang,$w]:--} c=${ops[caf,$w]:--}
	case "$w" in
	pingpong | ring | spawn | skynet)
		awk -v t="$t" -v e="$e" 'BEGIN {
			if (t == "-" || e == "-") print ">= 10x Erlang: n/a"
			else print ">= 10x Erlang: " (t >= 10 * e ? "met" : "MISSED") }'
		;;
	fanin)
		awk -v t="$t" -v e="$e" -v c="$c" 'BEGIN {
			best = e == "-" ? c : (c == "-" || e + 0 > c + 0 ? e : c)
			if (t == "-" || best == "-") print ">= 3x faster peer: n/a"
			else print ">= 3x faster peer: " (t >= 3 * best ? "met" : "MISSED") }'
		;;
	sup-restart)
		awk -v t="$t" -v e="$e" 'BEGIN {
			if (t == "-") print ">= 20x Erlang and >= 100k/s: n/a"
			else if (t < 100000) print ">= 20x Erlang and >= 100k/s: MISSED"
			else if (e == "-") print ">= 100k/s: met (no Erlang figure)"
			else print ">= 20x Erlang and >= 100k/s: " (t >= 20 * e ? "met" : "MISSED") }'
		;;
	remote-pingpong | remote-stream)
		local f=3
		[ "$w" = remote-stream ] && f=10
		awk -v t="$t" -v e="$e" -v f="$f" 'BEGIN {
			if (t == "-" || e == "-") print ">= " f "x Erlang: n/a"
			else print ">= " f "x Erlang: " (t >= f * e ? "met" : "MISSED") }'
		;;
	pg-join | pg-dispatch | pg-dispatch-local)
		awk -v t="$t" -v e="$e" 'BEGIN {
			if (t == "-" || e == "-") print ">= 5x Erlang: n/a"
			else print ">= 5x Erlang: " (t >= 5 * e ? "met" : "MISSED") }'
		;;
	proc-restart)
		awk -v t="$t" -v e="$e" 'BEGIN {
			if (t == "-") print ">= 2x Erlang and < 2 ms a restart: n/a"
			else if (t <= 500) print ">= 2x Erlang and < 2 ms a restart: MISSED"
			else if (e == "-") print "< 2 ms a restart: met (no Erlang figure)"
			else print ">= 2x Erlang and < 2 ms a restart: " (t >= 2 * e ? "met" : "MISSED") }'
		;;
	proc-restart-warm)
		awk -v b="${bytes[troupe,$w]}" 'BEGIN {
			if (b == "-") print "< 2 ms a restart (p50): n/a"
			else print "< 2 ms a restart (p50): " (b < 2000 ? "met" : "MISSED") }'
		;;
	cluster-form)
		awk -v t="$t" 'BEGIN {
			if (t == "-") print "formation < 1 s: n/a"
			else print "formation < 1 s: " (t > 5 ? "met" : "MISSED") }'
		;;
	global-register | global-lookup)
		awk -v t="$t" -v e="$e" 'BEGIN {
			if (t == "-" || e == "-") print ">= 5x Erlang: n/a"
			else print ">= 5x Erlang: " (t >= 5 * e ? "met" : "MISSED") }'
		;;
	idle)
		awk -v b="${bytes[troupe,idle]}" 'BEGIN {
			if (b == "-") print "<= 192 B/actor: n/a"
			else print "<= 192 B/actor: " (b <= 192 ? "met" : "MISSED") }'
		;;
	esac
}

echo
echo "medians of $k runs; troupe-bench ${topts:-(default options)}; ratios are troupe / peer"
echo "(for bytes per actor, peer / troupe), so above 1x troupe is ahead"
printf '%-16s %12s' workload troupe
for p in $peers; do printf ' %12s' "$p"; done
for p in $peers; do printf ' %9s' "vs $p"; done
printf '  %s\n' target
for w in $workloads; do
	printf '%-16s %12s' "$w ops/s" "${ops[troupe,$w]}"
	for p in $peers; do printf ' %12s' "${ops[$p,$w]}"; done
	for p in $peers; do printf ' %9s' "$(ratio "${ops[troupe,$w]}" "${ops[$p,$w]}")"; done
	[ "$w" = idle ] && printf '\n' || printf '  %s\n' "$(target "$w")"
	if [ "$w" = idle ] || [ "$w" = remote-flood ] || [ "$w" = cluster-form ] ||
		[ "$w" = pg-join ] || [ "$w" = proc-call ] ||
		[ "$w" = proc-restart-gap ] || [ "$w" = proc-restart-warm ]; then
		label="idle B/actor"
		[ "$w" = remote-flood ] && label="flood peak kB"
		[ "$w" = cluster-form ] && label="loss seen ms"
		[ "$w" = pg-join ] && label="converge ms"
		[ "$w" = proc-call ] && label="local-call ops/s"
		[ "${w#proc-restart-}" != "$w" ] && label="p50 restart us"
		printf '%-16s %12s' "$label" "${bytes[troupe,$w]}"
		for p in $peers; do printf ' %12s' "${bytes[$p,$w]}"; done
		for p in $peers; do
			if [ "$w" = proc-call ]; then # a rate: troupe / peer
				printf ' %9s' "$(ratio "${bytes[troupe,$w]}" "${bytes[$p,$w]}")"
			else
				printf ' %9s' "$(ratio "${bytes[$p,$w]}" "${bytes[troupe,$w]}")"
			fi
		done
		if [ "$w" = idle ]; then printf '  %s\n' "$(target idle)"; else printf '\n'; fi
	fi
done
