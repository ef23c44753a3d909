#!/usr/bin/env bash
# The systemd unit (deploy/systemd, docs/deploy.md "Several hosts with
# systemd"), checked with systemd's own tools, which need no running
# systemd:
#
#   test_systemd.sh SOURCE_DIR TROUPE_KV
#
#   1. The template instantiated as troupe-kv@n1.service in a directory of
#      the test's own, its ExecStart pointed at TROUPE_KV (the built
#      program), so that the program's path is checked too:
#      "systemd-analyze verify" must say nothing at all about it (it
#      exits 0 on most warnings, so its output is what counts).
#   2. "systemd-analyze security --offline=yes": the sandbox's exposure
#      must stay at or below 1.5 (docs/deploy.md quotes it).
#   3. The unit says what troupe-kv's contract needs: Type=notify, the
#      cookie as the credential "cookie", the settings from
#      /etc/troupe/%i.env, restarts on failure within a start limit, a
#      descriptor limit for many clients; node.env.example sets only the
#      contract's variables (kv_env.txt, which test_kv.sh checks against
#      the program), the addresses and the cluster size, and no cookie.
#
# Skips, saying why, only where systemd-analyze is missing or cannot run
# at all (it verifies a unit known to be good first).
set -uo pipefail

src=${1:?usage: $0 SOURCE_DIR TROUPE_KV}
kv=${2:?usage: $0 SOURCE_DIR TROUPE_KV}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

unit=$src/deploy/systemd/troupe-kv@.service
envex=$src/deploy/systemd/node.env.example
[ -f "$unit" ] || fail "no $unit"
[ -x "$kv" ] || fail "no troupe-kv at $kv"

command -v systemd-analyze >/dev/null ||
	skip "no systemd-analyze (apt-get install systemd; deploy/setup.sh does)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/troupe-systemd-XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

# Can it run here at all? A unit with nothing to say about.
printf '[Unit]\nDescription=probe\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
	>"$tmp/troupe-probe.service"
if ! out=$(systemd-analyze verify --man=no "$tmp/troupe-probe.service" 2>&1) ||
	grep -q troupe-probe <<<"$out"; then
	skip "systemd-analyze cannot verify units here: $out"
fi

# 1. verify
exe=$(readlink -f "$kv")
echo "ExecStart: the built troupe-kv, $exe"
inst=$tmp/troupe-kv@n1.service
grep -q '^ExecStart=/usr/local/bin/troupe-kv$' "$unit" ||
	fail "the unit's ExecStart is not /usr/local/bin/troupe-kv"
sed "s#^ExecStart=/usr/local/bin/troupe-kv\$#ExecStart=$exe#" "$unit" >"$inst"
out=$(systemd-analyze verify --man=no "$inst" 2>&1)
rc=$?
mine=$(grep -F -e 'troupe-kv@' -e "$tmp" <<<"$out")
if [ $rc -ne 0 ] || [ -n "$mine" ]; then
	echo "$out" >&2
	fail "systemd-analyze verify: status $rc, or warnings about the unit (above)"
fi
[ -n "$out" ] && printf 'systemd-analyze verify, about other units:\n%s\n' "$out"
echo "ok: systemd-analyze verify troupe-kv@n1.service: nothing to say"

# 2. security
out=$(systemd-analyze security --offline=yes --threshold=15 "$inst" 2>&1)
rc=$?
level=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' <<<"$out" | awk '{ print $NF }')
if [ $rc -ne 0 ] || [ -z "$level" ]; then
	grep -v '✓' <<<"$out" >&2
	fail "systemd-analyze security: exposure ${level:-?}, above 1.5 (status $rc)"
fi
echo "ok: systemd-analyze security: exposure $level (1.5 allowed)"

# 3. what the contract needs
want() { # PATTERN WHAT
	grep -Eq "^$1\$" "$unit" || fail "the unit does not say $2 ($1)"
}
want 'Type=notify' "that the node says READY"
want 'LoadCredential=cookie:/etc/troupe/cookie' "where the cookie comes from"
want 'EnvironmentFile=/etc/troupe/%i\.env' "where the node's settings come from"
want 'Environment=TROUPE_NAME=%i' "that the node is named after the instance"
want 'Restart=on-failure' "to restart a failed node"
want 'RestartSec=[0-9]+s?' "how long to wait before a restart"
want 'StartLimitBurst=[0-9]+' "a start limit"
want 'DynamicUser=yes' "which user runs the node"
nofile=$(sed -n 's/^LimitNOFILE=//p' "$unit")
[ "${nofile:-0}" -ge 65536 ] 2>/dev/null || fail "LimitNOFILE=$nofile: fewer than 65536 descriptors"

names=$(sed -nE 's/^#?(TROUPE_[A-Z_]+)=.*/\1/p' "$envex" | sort -u)
for n in $names; do
	grep -qx "$n" "$here/kv_env.txt" || fail "node.env.example sets $n, which troupe-kv does not read"
done
for n in TROUPE_LISTEN TROUPE_RESP TROUPE_OBSERVER TROUPE_SEEDS TROUPE_CLUSTER_SIZE; do
	grep -q "^$n=" "$envex" || fail "node.env.example does not set $n"
done
grep -Eq '^#?TROUPE_COOKIE' "$envex" && fail "node.env.example holds a cookie setting: the cookie is a credential"
echo "ok: the unit and node.env.example say what troupe-kv's contract needs"
