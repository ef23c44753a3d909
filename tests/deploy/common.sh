# Shared by the deploy tests (sourced; bash).
#
#   fail MSG     FAIL: MSG, exit 1
#   skip MSG     SKIP: MSG, exit 77 (ctest's SKIP_RETURN_CODE of these tests)
#   deploy_python MODULE...
#                sets $python to a python3 that imports every MODULE
#                (Debian's own first: its python3-yaml and
#                python3-kubernetes are the ones deploy/setup.sh installs),
#                or fails saying which packages to install. Run it with -B:
#                no bytecode is written into the source tree.

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

deploy_python() {
	local p imports
	imports=$(printf 'import %s;' "$@")
	for p in /usr/bin/python3 python3; do
		if command -v "$p" >/dev/null && "$p" -c "$imports" 2>/dev/null; then
			python=$p
			return 0
		fi
	done
	fail "no python3 with $* (apt-get install python3-yaml python3-kubernetes; deploy/setup.sh does)"
}
