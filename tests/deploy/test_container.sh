#!/usr/bin/env bash
# The container recipe (deploy/container/Containerfile), checked as far as
# a machine without a container runtime can:
#
#   test_container.sh SOURCE_DIR TROUPE_KV TROUPE_CTL BUILD_DIR CMAKE
#
#   1. Both stages are Debian 12; the build stage installs only packages
#      deploy/setup.sh installs too, builds in Release, builds the target
#      troupe-kv and installs it from where the build tree has it (the
#      first PROGRAM), and installs troupe-ctl's component; every package
#      either stage names exists in Debian 12 (apt-cache on this Debian
#      12 machine).
#   2. Every shared library each PROGRAM loads (its NEEDED entries and
#      theirs, readelf, where ldd finds them) belongs to a package
#      (dpkg -S) that the runtime stage installs, by name or as a
#      dependency of one it names (libc6), of the built troupe-kv and
#      troupe-ctl (which the health check runs). troupe's own shared
#      libraries, which both load, must be in the troupe_runtime
#      component (installed from BUILD_DIR into a directory of the
#      test's own, as the build stage installs it into /usr/local), in a
#      directory the loader's configuration names (this Debian 12's
#      /etc/ld.so.conf.d, as the image's). A sanitizer build's
#      runtime (libasan, libtsan, libubsan) and what it loads are left
#      out: the image is a Release build.
#   3. The final stage runs as a numeric user that is not root, exposes
#      7100, 6379 and 8080, and checks its health with troupe-kv-health;
#      .dockerignore keeps build trees and .git out of the context.
#
# Skips, saying why, on a machine that is not Debian 12 (whose package
# database is what is compared).
set -uo pipefail

usage="usage: $0 SOURCE_DIR TROUPE_KV TROUPE_CTL BUILD_DIR CMAKE"
src=${1:?$usage}
kv=${2:?$usage}
ctl=${3:?$usage}
bdir=${4:?$usage}
cmake=${5:?$usage}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-container-XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

cf=$src/deploy/container/Containerfile
[ -f "$cf" ] || fail "no $cf"
# shellcheck disable=SC1091
. /etc/os-release 2>/dev/null
[ "${ID:-}" = debian ] && [ "${VERSION_ID:-}" = 12 ] ||
	skip "this machine is ${PRETTY_NAME:-not Debian}, not Debian 12: its packages say nothing of the image's"
deploy_python yaml
cfq() { "$python" -B "$here/containerfile.py" "$cf" "$@"; }

# ---- 1. the stages and their packages -----------------------------------

[[ $(cfq base final) =~ ^debian:(12|bookworm)(-slim)?$ ]] || fail "the final stage is $(cfq base final), not Debian 12"
[[ $(cfq base build) =~ ^debian:(12|bookworm)(-slim)?$ ]] || fail "the build stage is $(cfq base build), not Debian 12"
mapfile -t runtime < <(cfq packages final)
mapfile -t build < <(cfq packages build)
[ ${#runtime[@]} -gt 0 ] || fail "the final stage installs no package"
[ ${#build[@]} -gt 0 ] || fail "the build stage installs no package"

setup_pkgs=$(sed -n '/^packages=(/,/^)/p' "$src/deploy/setup.sh" | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v -e '^packages=($' -e '^)$' -e '^$')
for p in "${build[@]}"; do
	grep -qx "$p" <<<"$setup_pkgs" || fail "the build stage installs $p, which deploy/setup.sh does not"
done
grep -q -- '-DCMAKE_BUILD_TYPE=Release' "$cf" || fail "the build stage does not build in Release"
grep -q -- '--component troupe_runtime' "$cf" || fail "the build stage does not install troupe's runtime component (troupe-ctl and its libraries)"
# The program it builds and installs is the one this tree builds: the
# target troupe-kv, at the place of the build tree where it is here.
grep -Eq -- '--target troupe-kv( |$)' "$cf" || fail "the build stage does not build the target troupe-kv"
kv_rel=$(sed -n 's#.*install -m 0755 /build/\([^ ]*troupe-kv\) .*#\1#p' "$cf")
[ -n "$kv_rel" ] || fail "the build stage does not install troupe-kv from /build"
[[ $kv == */"$kv_rel" ]] || fail "the build stage installs /build/$kv_rel, but troupe-kv is built at $kv"

# One apt-cache for all (each call reads the whole package index).
known=$(apt-cache show --no-all-versions "${runtime[@]}" "${build[@]}" 2>/dev/null |
	sed -n 's/^Package: //p' | sort -u)
for p in "${runtime[@]}" "${build[@]}"; do
	grep -qx "$p" <<<"$known" || fail "no package $p in Debian 12 (apt-cache show $p)"
done
echo "ok: both stages Debian 12; the build stage's ${#build[@]} packages are deploy/setup.sh's; all $(( ${#runtime[@]} + ${#build[@]} )) packages exist"

# ---- 2. the programs' libraries -----------------------------------------

# What installing the final stage's packages brings: them and what they
# depend on (recursively; recommends are not installed).
closure=$(apt-cache depends --recurse --no-recommends --no-suggests \
	--no-conflicts --no-breaks --no-replaces --no-enhances "${runtime[@]}" |
	grep -v '^ ' | sort -u)

# Each program's libraries ("PROGRAM LIB PATH" lines): the loader, and
# the NEEDED entries of the program and of its libraries, recursively,
# with the paths ldd resolved them to. A sanitizer build's runtime is
# noted and not followed: what it loads (libstdc++ for UBSan) is not the
# program's.
needed() { # FILE: its NEEDED entries
	readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}
libs=()
for prog in "$kv" "$ctl"; do
	[ -x "$prog" ] || fail "no program $prog"
	deps=$(ldd "$prog") || fail "ldd $prog failed"
	declare -A where=() seen=()
	while read -r lib path; do
		where[$lib]=$path
	done < <(awk '/=>/ { print $1, $3 }' <<<"$deps")
	name=$(basename "$prog")
	loader=$(awk '/^\t\// { print $1 }' <<<"$deps")
	if [ -n "$loader" ]; then
		libs+=("$name $loader $loader")
		seen[$(basename "$loader")]=1 # libc's NEEDED names it so
	fi
	queue=($(needed "$prog"))
	while [ ${#queue[@]} -gt 0 ]; do
		lib=${queue[0]}
		queue=("${queue[@]:1}")
		[ -n "${seen[$lib]:-}" ] && continue
		seen[$lib]=1
		libs+=("$name $lib ${where[$lib]:-}")
		case $lib in
		libasan.so.* | libtsan.so.* | libubsan.so.* | liblsan.so.*) continue ;;
		esac
		[ -n "${where[$lib]:-}" ] && queue+=($(needed "${where[$lib]}"))
	done
	unset where seen
done

# troupe's libraries as the image has them: the component, installed.
"$cmake" --install "$bdir" --component troupe_runtime --prefix "$tmp/usr/local" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "cmake --install $bdir --component troupe_runtime failed"; }
[ -x "$tmp/usr/local/bin/troupe-ctl" ] || fail "the troupe_runtime component has no bin/troupe-ctl"
ld_dirs=$(cat /etc/ld.so.conf.d/*.conf 2>/dev/null | sed 's/#.*//' | grep '^/')

# The paths dpkg may know each library by: as ldd found it or resolved,
# with or without /usr (merged /usr: dpkg knows one of them). One dpkg -S
# for all ("PACKAGE:ARCH: PATH" for each it knows).
cands=()
for l in "${libs[@]}"; do
	read -r _ _ path <<<"$l"
	for c in "$path" "$(readlink -f "$path")"; do
		cands+=("$c" "${c#/usr}" "/usr$c")
	done
done
owners=$(dpkg -S "${cands[@]}" 2>/dev/null)
pkg_of() { # PATH
	local c hit
	for c in "$1" "$(readlink -f "$1")"; do
		for c in "$c" "${c#/usr}" "/usr$c"; do
			hit=$(awk -v p="$c" '$NF == p { sub(/:.*/, "", $1); print $1; exit }' <<<"$owners")
			[ -n "$hit" ] && { echo "$hit"; return 0; }
		done
	done
	return 1
}

last=""
for l in "${libs[@]}"; do
	read -r prog lib path <<<"$l"
	if [ "$prog" != "$last" ]; then
		echo "$prog:"
		last=$prog
	fi
	case $lib in
	linux-vdso.so.*) continue ;;
	libasan.so.* | libtsan.so.* | libubsan.so.* | liblsan.so.*)
		echo "  $lib: the sanitizer's runtime (not in a Release image)"
		continue ;;
	libtroupe.so.* | libtroupe-node.so.*)
		got=$(cd "$tmp" && find usr/local -name "$lib" | head -n 1)
		[ -n "$got" ] || fail "$prog loads $lib, which the troupe_runtime component does not install"
		grep -qx "/$(dirname "$got")" <<<"$ld_dirs" ||
			fail "the component installs $lib in /$(dirname "$got"), which the loader does not search"
		echo "  $lib: troupe's, in the troupe_runtime component at /$got"
		continue ;;
	esac
	[ -n "$path" ] && [ -e "$path" ] || fail "$prog loads $lib, which is not found"
	pkg=$(pkg_of "$path") || fail "$prog loads $path, of no package"
	if printf '%s\n' "${runtime[@]}" | grep -qx "$pkg"; then
		echo "  $lib: $pkg (the final stage installs it)"
	elif grep -qx "$pkg" <<<"$closure"; then
		echo "  $lib: $pkg (a dependency of what the final stage installs)"
	else
		fail "$prog loads $lib of package $pkg, which the final stage does not install"
	fi
done
echo "ok: every library the programs load is in the final stage"

# ---- 3. user, ports, health, context ------------------------------------

user=$(cfq user)
uid=${user%%:*}
[[ $uid =~ ^[0-9]+$ ]] || fail "USER '$user' is not numeric (Kubernetes' runAsNonRoot cannot check a name)"
[ "$uid" -ne 0 ] || fail "USER is root"
grep -Eq '^EXPOSE( [0-9]+)*$' "$cf" || fail "no EXPOSE line"
for port in 7100 6379 8080; do
	grep -E '^EXPOSE' "$cf" | grep -qw "$port" || fail "port $port is not exposed"
done
grep -q 'CMD \["troupe-kv-health"\]' "$cf" || fail "no HEALTHCHECK with troupe-kv-health"
sh -n "$src/deploy/container/troupe-kv-health" || fail "troupe-kv-health is not valid sh"
ign=$src/.dockerignore
[ -f "$ign" ] || fail "no .dockerignore at the top of the tree"
for p in .git 'build*'; do
	grep -qxF "$p" "$ign" || fail ".dockerignore does not leave out $p"
done
echo "ok: USER $user, EXPOSE 7100 6379 8080, HEALTHCHECK troupe-kv-health, .dockerignore"
