#!/usr/bin/env bash
# One command from a fresh clone on Debian 12: installs what is missing, then
# builds and runs the whole test suite three times:
#   build-test/  warnings as errors
#   build-tsan/  ThreadSanitizer
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer (+ leaks)
# then, when clang is there, a fuzz pass:
#   build-fuzz/  every libFuzzer target of tests/fuzz, TROUPE_FUZZ_SECONDS
#                (default 60) each on a copy of its seed corpus, a few at
#                once; a crash, leak, timeout or memory blow-up fails it
#                (docs/fuzzing.md).
# TROUPE_TEST_SANITIZERS=0 skips the two sanitizer passes, TROUPE_TEST_FUZZ=0
# the fuzz pass. The last line of output is "N passed, N failed", summed over
# the passes (each fuzz target counts as one); the exit status is non-zero if
# any step failed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

ncpu=$(nproc 2>/dev/null || echo 2)
ctest_jobs=2
# A default per-test limit, so that a hung test fails instead of hanging CI.
# Tests that set their own TIMEOUT keep it.
ctest_timeout=900

passed=0
failed=0
errors=()

banner() { printf '\n==== %s ====\n' "$*"; }

elapsed() { printf '%dm%02ds' $((SECONDS / 60)) $((SECONDS % 60)); }

# run_pass NAME BUILD_DIR 'ENV=VALUE ...' CMAKE_ARGS...
run_pass() {
	local name=$1 dir=$2 envs=$3
	shift 3
	local -a env_vars=()
	[ -n "$envs" ] && read -r -a env_vars <<<"$envs"

	banner "[$name] configure $dir ($(elapsed))"
	if ! cmake -S . -B "$dir" "$@"; then
		errors+=("$name: configure failed")
		return
	fi

	banner "[$name] build $dir ($(elapsed))"
	if ! cmake --build "$dir" -j "$ncpu"; then
		errors+=("$name: build failed")
		return
	fi

	banner "[$name] ctest $dir ($(elapsed))"
	local -a wrap=()
	if [ "$name" = tsan ] && tsan_needs_no_aslr; then
		echo "vm.mmap_rnd_bits is above 28: running ThreadSanitizer without ASLR"
		wrap=(setarch "$(uname -m)" -R)
	fi
	local log=$dir/ctest-output.log
	env "${env_vars[@]}" "${wrap[@]}" ctest --test-dir "$dir" \
		--output-on-failure --no-tests=error \
		-j "$ctest_jobs" --timeout "$ctest_timeout" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}

	# ctest ends with "NN% tests passed, F tests failed out of T".
	local line
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		local f t
		f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
		t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
		passed=$((passed + t - f))
		failed=$((failed + f))
		[ "$f" -gt 0 ] && errors+=("$name: $f of $t tests failed")
	fi
	if [ "$rc" -ne 0 ] && { [ -z "$line" ] || [ "$f" -eq 0 ]; }; then
		errors+=("$name: ctest exited with status $rc")
	fi
}

# gcc 12's ThreadSanitizer cannot map its shadow memory when the kernel uses
# more than 28 bits of mmap randomisation (newer kernels may); running the
# tests without ASLR avoids that.
tsan_needs_no_aslr() {
	local bits
	bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)
	[ "$bits" -gt 28 ] && setarch "$(uname -m)" -R true 2>/dev/null
}

# The fuzz pass: builds build-fuzz with clang and runs every target for
# TROUPE_FUZZ_SECONDS on a fresh copy of its seeds (the checked-in corpus
# is never written), up to $ncpu targets at once. Logs and whatever a
# crash left are in build-fuzz/fuzz-run/.
run_fuzz() {
	local dir=build-fuzz secs=${TROUPE_FUZZ_SECONDS:-60}
	local cc
	cc=$(command -v clang || true)
	if [ -z "$cc" ]; then
		banner "fuzz pass skipped (no clang)"
		return
	fi
	banner "[fuzz] configure $dir ($(elapsed))"
	if ! CC=$cc cmake -S . -B "$dir" -DCMAKE_C_COMPILER="$cc" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_FUZZ=ON \
		-DTROUPE_BUILD_TESTS=OFF -DTROUPE_BUILD_SAMPLES=OFF; then
		errors+=("fuzz: configure failed")
		return
	fi
	banner "[fuzz] build $dir ($(elapsed))"
	if ! cmake --build "$dir" -j "$ncpu"; then
		errors+=("fuzz: build failed")
		return
	fi
	banner "[fuzz] run each target for ${secs}s ($(elapsed))"
	local run=$dir/fuzz-run
	rm -rf "$run"
	mkdir -p "$run"
	local -a names=()
	local bin name
	for bin in "$dir"/tests/fuzz/fuzz_*; do
		[ -f "$bin" ] && [ -x "$bin" ] || continue
		name=${bin##*/fuzz_}
		mkdir -p "$run/$name/corpus" "$run/$name/artifacts"
		if [ -d "tests/fuzz/corpus/$name" ]; then
			cp -r "tests/fuzz/corpus/$name/." "$run/$name/corpus/"
		fi
		while [ "$(jobs -rp | wc -l)" -ge "$ncpu" ]; do
			wait -n
		done
		# -timeout: an input that takes this long is a failure (a
		# hang); -rss_limit_mb: so is a process past this much.
		(
			timeout $((secs + 300)) "$bin" -max_total_time="$secs" \
				-rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
				-artifact_prefix="$run/$name/artifacts/" \
				"$run/$name/corpus" >"$run/$name.log" 2>&1
			echo $? >"$run/$name.rc"
		) &
		names+=("$name")
	done
	wait
	if [ ${#names[@]} -eq 0 ]; then
		errors+=("fuzz: no targets were built")
		return
	fi
	local rc last crash
	for name in "${names[@]}"; do
		rc=$(cat "$run/$name.rc" 2>/dev/null || echo 1)
		last=$(grep -E '^#[0-9]+' "$run/$name.log" | tail -n 1)
		last=$(sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+/\1 runs, /; s/ corp:.*exec\/s: ([0-9]+).*/, \1 exec\/s/' <<<"$last")
		crash=$(ls "$run/$name/artifacts" 2>/dev/null | head -n 1)
		if [ "$rc" -eq 0 ] && [ -z "$crash" ]; then
			passed=$((passed + 1))
			echo "fuzz_$name: ${secs}s, $last, no crash"
		else
			failed=$((failed + 1))
			echo "fuzz_$name: FAILED (status $rc) after $last; see $run/$name.log"
			grep -E '^==[0-9]+==ERROR|^SUMMARY|deadly signal|ERROR: libFuzzer' "$run/$name.log" | head -n 5
			errors+=("fuzz: fuzz_$name failed (status $rc): $run/$name.log${crash:+, input $run/$name/artifacts/$crash}")
		fi
	done
}

banner "setup: system packages"
if bash deploy/setup.sh; then
	# test_node_churn: 30,000 restarts of a node here, its default of
	# 100,000 being for a run by hand (it took 6 to 15 minutes beside the
	# rest of the suite on a 2-core machine, against ctest's timeout).
	run_pass werror build-test "TROUPE_CHURN=30000" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_WERROR=ON -DTROUPE_SANITIZE=

	if [ "${TROUPE_TEST_SANITIZERS:-1}" != 0 ]; then
		stress=${TROUPE_STRESS_ACTORS:-200000}
		# test_node_flap under a sanitizer: a smaller cluster with a
		# slower tick (thirty such processes starve two cores).
		flap="TROUPE_FLAP_NODES=8 TROUPE_FLAP_SECONDS=20 TROUPE_FLAP_TICK=500"
		# test_proc: 100 restarts of a process child rather than 1000
		# (an instrumented child starts in tens of milliseconds).
		flap="$flap TROUPE_PROC_RESTARTS=100"
		run_pass tsan build-tsan \
			"TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp TROUPE_STRESS_ACTORS=$stress TROUPE_CHURN=6000 $flap" \
			-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_WERROR=OFF -DTROUPE_SANITIZE=thread
		run_pass asan build-asan \
			"ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$root/tests/lsan.supp UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 TROUPE_STRESS_ACTORS=$stress TROUPE_CHURN=10000 $flap" \
			-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTROUPE_WERROR=OFF -DTROUPE_SANITIZE=address
	else
		banner "sanitizer passes skipped (TROUPE_TEST_SANITIZERS=0)"
	fi

	if [ "${TROUPE_TEST_FUZZ:-1}" != 0 ]; then
		run_fuzz
	else
		banner "fuzz pass skipped (TROUPE_TEST_FUZZ=0)"
	fi
else
	errors+=("setup failed")
fi

banner "done ($(elapsed))"
for e in "${errors[@]}"; do
	echo "FAILED: $e"
done
echo "$passed passed, $failed failed"
[ ${#errors[@]} -eq 0 ]
