#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages needed to build, test and run
# troupe. Safe to run again: when every package is installed already it does
# nothing, without touching the network.
set -euo pipefail

packages=(
	# toolchain
	build-essential gcc libc6-dev make cmake pkg-config
	# gcc 12's sanitizer runtimes (ThreadSanitizer, AddressSanitizer, UBSan)
	libtsan2 libasan8 libubsan1
	# distribution: transport and wire format; crypto from mbed TLS 2.28
	# (libnng-dev pulls it in, but troupe links libmbedcrypto itself)
	libnng-dev libprotobuf-c-dev protobuf-c-compiler libmbedtls-dev
	# tests
	libcmocka-dev
	# the observer's JSON
	libjansson-dev
	# distribution tests: command-line clients (nngcat, protoc, openssl)
	nng-utils protobuf-compiler openssl
	# the Python client of the client endpoint (samples/kv/client), with
	# protoc above: the protobuf runtime of the same release (3.21)
	python3-protobuf
	# DNS discovery test: a DNS server (the binary only, no service)
	dnsmasq-base
	# deployment tests (tests/deploy): systemd-analyze for the unit (no
	# systemd needs to run), yamllint and the Kubernetes Python client's
	# schema for the manifests
	systemd yamllint python3-yaml python3-kubernetes
	# the observer's web page, tested in headless Chromium through
	# chromedriver (test_observer_ui)
	chromium chromium-driver
	# sockets tests and benchmarks: clients no one here wrote (nc, socat,
	# redis-cli, redis-benchmark), Redis itself and Erlang's gen_tcp as peers
	netcat-openbsd socat redis-tools redis-server erlang-base
	# fuzzing (deploy/test.sh's fuzz pass): clang 14 and its libFuzzer,
	# ASan and UBSan runtimes
	clang libclang-rt-14-dev
)

installed() {
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all ${#packages[@]} packages are installed"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
else
	echo "setup: missing packages (${missing[*]}); run this as root or install sudo" >&2
	exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	--no-install-recommends "${missing[@]}"
echo "setup: done"
