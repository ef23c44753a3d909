#!/usr/bin/env bash
# Regenerates docs/bench/: runs compare.sh (troupe beside Erlang/OTP and
# CAF, K alternating runs of each workload) and latency_compare.sh, keeps
# their output in docs/bench/compare.txt and docs/bench/latency.txt, and
# draws docs/bench/compare.svg from the first (plot.py).
#
#   samples/bench/report.sh [TROUPE_BENCH [PEER_SH]]
#
# K (3), PEERS and WORKLOADS go to compare.sh as it documents; by default
# every workload it knows, local and distributed. K, N and RN (5000 here)
# go to latency_compare.sh (call-latency and remote-call-latency, both
# beside Erlang).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bench=${1:-${TROUPE_BENCH:-$root/build/samples/troupe-bench}}
peer=${2:-${PEER_SH:-$root/../shared/bench/peer.sh}}
out=$root/docs/bench
mkdir -p "$out"
export K=${K:-3}
export RN=${RN:-5000}
{
	echo "# samples/bench/compare.sh, $(date -u +%Y-%m-%d), $(nproc) cores, K=$K"
	bash "$here/compare.sh" "$bench" "$peer" 2> /dev/null
} > "$out/compare.txt"
{
	echo "# samples/bench/latency_compare.sh, $(date -u +%Y-%m-%d), K=$K, RN=$RN"
	bash "$here/latency_compare.sh" "$bench" 2> /dev/null
} > "$out/latency.txt"
/usr/bin/python3 "$here/plot.py" "$out/compare.txt" "$out/compare.svg"
cat "$out/compare.txt" "$out/latency.txt"
