#!/usr/bin/env bash
# The CPUs a process may use, seen from outside: runs cpus_probe (which
# prints tr_cpus_available(), the schedulers of a default runtime and the
# CPU a pinned scheduler runs on) under a narrowed affinity mask and in a
# cgroup with a CPU quota.
#
#   test_cpus.sh affinity PROBE   taskset -c 0 (and -c 1 on 2 CPUs or more)
#   test_cpus.sh cgroup PROBE     a cgroup v2 child with cpu.max, or where
#                                 the cpu controller is on cgroup v1, one
#                                 with cpu.cfs_quota_us; needs root
#
# Status 0: passed, 1: failed, 77: skipped (the reason is printed). The
# cgroups it makes are removed on exit, whatever happens, and a process
# still in one is moved back first.
set -u

mode=${1:?mode}
probe=${2:?probe}
failures=0

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# run_probe LABEL [COMMAND...]: runs the probe under COMMAND, bounded;
# sets available, schedulers and pinned from what it prints.
run_probe() {
	local label=$1 out
	shift
	available='' schedulers='' pinned=''
	if ! out=$(timeout 120 "$@" "$probe"); then
		fail "probe ($label) failed: $out"
		return 1
	fi
	available=$(sed -n 's/^available //p' <<<"$out")
	schedulers=$(sed -n 's/^schedulers //p' <<<"$out")
	pinned=$(sed -n 's/^pinned //p' <<<"$out")
	echo "  $label: available=$available schedulers=$schedulers pinned=$pinned"
}

# expect WHAT NAME ACTUAL WANTED
expect() {
	if [ "$3" != "$4" ]; then
		fail "$1: $2 is '$3', expected '$4'"
	fi
}

ncpu=$(nproc)
run_probe "as started" env || exit 1
baseline=$available
echo "nproc $ncpu, troupe sees $baseline"
if [ "$baseline" -lt 1 ] || [ "$baseline" -gt "$ncpu" ]; then
	fail "available $baseline outside 1..$ncpu"
fi
expect "defaults" schedulers "$schedulers" \
	"$((baseline < 64 ? baseline : 64))"

case $mode in
affinity)
	run_probe "taskset -c 0" taskset -c 0
	expect "taskset -c 0" available "$available" 1
	expect "taskset -c 0" schedulers "$schedulers" 1
	expect "taskset -c 0" pinned "$pinned" 0
	if [ "$ncpu" -ge 2 ]; then
		# Scheduler 0 pins to the first CPU of the mask, not to CPU 0.
		run_probe "taskset -c 1" taskset -c 1
		expect "taskset -c 1" available "$available" 1
		expect "taskset -c 1" schedulers "$schedulers" 1
		expect "taskset -c 1" pinned "$pinned" 1
		run_probe "taskset -c 0,1" taskset -c 0,1
		expect "taskset -c 0,1" schedulers "$schedulers" "$available"
		if [ "$available" -gt 2 ]; then
			fail "taskset -c 0,1: available $available above 2"
		fi
	fi
	;;
cgroup)
	[ "$(id -u)" = 0 ] || skip "needs root to make a cgroup"
	# A quota of 1 CPU only shows where more than 1 is available.
	[ "$baseline" -ge 2 ] ||
		skip "needs 2 CPUs to see a quota of 1 (this process has $baseline)"

	# The mount of the v2 hierarchy, or of the v1 one with the cpu
	# controller, and its root: "ROOT MOUNTPOINT" (escapes ignored).
	mount_of() {
		awk -v want="$1" '{
			for (i = 7; i <= NF && $i != "-"; i++) ;
			if (i + 3 > NF) next
			fs = $(i + 1); opts = "," $(i + 3) ","
			if ((want == "v2" && fs == "cgroup2") ||
			    (want == "v1" && fs == "cgroup" && opts ~ /,cpu,/)) {
				print $4, $5; exit
			}
		}' /proc/self/mountinfo
	}
	# This process's cgroup path in that hierarchy.
	path_of() {
		awk -v want="$1" '{
			i = index($0, ":"); rest = substr($0, i + 1)
			j = index(rest, ":"); ctl = "," substr(rest, 1, j - 1) ","
			p = substr(rest, j + 1)
			if ((want == "v2" && substr($0, 1, i) == "0:" && j == 1) ||
			    (want == "v1" && ctl ~ /,cpu,/)) { print p; exit }
		}' /proc/self/cgroup
	}
	# The directory of this process's cgroup, "" if not under the mount.
	own_dir() {
		local m root point p
		m=$(mount_of "$1")
		[ -n "$m" ] || return 1
		root=${m%% *} point=${m#* }
		p=$(path_of "$1")
		[ -n "$p" ] || return 1
		[ "$root" = / ] && root=
		case $p in "$root" | "$root"/*) ;; *) return 1 ;; esac
		p=${p#"$root"}
		[ "$p" = / ] && p=
		echo "$point$p"
	}

	made=()
	origin=''
	# shellcheck disable=SC2317 # run by the EXIT trap
	cleanup() {
		local i d pid
		for ((i = ${#made[@]} - 1; i >= 0; i--)); do
			d=${made[i]}
			[ -d "$d" ] || continue
			while read -r pid; do
				echo "$pid" >"$origin/cgroup.procs" 2>/dev/null
			done <"$d/cgroup.procs"
			rmdir "$d" 2>/dev/null || echo "could not remove $d"
		done
	}
	trap cleanup EXIT

	# v2: a child of this process's cgroup, with the cpu controller
	# enabled for its children (which the kernel refuses, EBUSY, in a
	# cgroup other than the root that has processes of its own).
	version=''
	if dir=$(own_dir v2) && [ -w "$dir" ] &&
		grep -qw cpu "$dir/cgroup.controllers" 2>/dev/null; then
		if ! grep -qw cpu "$dir/cgroup.subtree_control"; then
			echo +cpu >"$dir/cgroup.subtree_control" 2>/dev/null
		fi
		if grep -qw cpu "$dir/cgroup.subtree_control"; then
			version=v2 origin=$dir
		else
			echo "cgroup v2: cannot enable cpu in $dir/cgroup.subtree_control"
		fi
	elif dir=$(own_dir v2); then
		echo "cgroup v2: no cpu controller in $dir (bound to v1, or not delegated)"
	fi
	if [ -z "$version" ] && dir=$(own_dir v1) && [ -w "$dir" ]; then
		version=v1 origin=$dir
	fi
	[ -n "$version" ] ||
		skip "no cgroup with the cpu controller that this process can write"
	echo "cgroup $version under $origin"

	parent=$origin/troupe-cpus-test.$$
	mkdir "$parent" || skip "cannot make $parent"
	made+=("$parent")
	if [ "$version" = v2 ]; then
		[ -f "$parent/cpu.max" ] || skip "no cpu.max in $parent"
	fi

	# quota Q: sets the parent's quota to Q microseconds per 100 ms.
	quota() {
		if [ "$version" = v2 ]; then
			echo "$1 100000" >"$parent/cpu.max"
		else
			echo 100000 >"$parent/cpu.cfs_period_us" &&
				echo "$1" >"$parent/cpu.cfs_quota_us"
		fi
	}
	# inside LABEL DIR [COMMAND...]: the probe as a member of cgroup DIR.
	inside() {
		local label=$1 d=$2
		shift 2
		# shellcheck disable=SC2016
		run_probe "$label" \
			sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' \
			sh "$d" "$@"
	}

	quota 100000 || skip "cannot set a quota in $parent"
	inside "quota 1 CPU" "$parent"
	expect "quota 1 CPU" available "$available" 1
	expect "quota 1 CPU" schedulers "$schedulers" 1

	quota 50000
	inside "quota 0.5 CPU" "$parent"
	expect "quota 0.5 CPU (rounded up)" available "$available" 1

	quota 150000
	inside "quota 1.5 CPU" "$parent"
	expect "quota 1.5 CPU (rounded up)" available "$available" 2
	expect "quota 1.5 CPU (rounded up)" schedulers "$schedulers" 2
	inside "quota 1.5 CPU, taskset -c 0" "$parent" taskset -c 0
	expect "quota 1.5 CPU, taskset -c 0" available "$available" 1

	# Nested: a child without a limit of its own is held by its parent's.
	quota 100000
	child=$parent/c
	mkdir "$child" || fail "cannot make $child"
	made+=("$child")
	if [ -d "$child" ]; then
		inside "nested, parent 1 CPU" "$child"
		expect "nested, parent 1 CPU" available "$available" 1
		expect "nested, parent 1 CPU" schedulers "$schedulers" 1
	fi
	;;
*)
	echo "unknown mode $mode"
	exit 2
	;;
esac

if [ "$failures" -gt 0 ]; then
	echo "$failures failure(s)"
	exit 1
fi
echo "passed"
exit 0
