#!/usr/bin/env bash
# Installs what oe-rt's tests need beyond Go: make (the template tests drive
# each generated project through its Makefile), the Debian packages the
# Python template runs on, and Node.js/npm for the Node template (npm
# packages are installed by the tests themselves from the template's
# lockfile, with npm ci), and qemu-user-static, under which the release
# test runs the ARM builds (qemu-aarch64-static, qemu-arm-static), and, as
# root where no Docker engine answers, Debian's docker.io for the container
# tests (scripts/docker-engine.sh starts a private daemon of it).
# Idempotent and non-interactive; it does nothing when everything is
# already there, and runs apt-get update before it installs.
set -euo pipefail

# check_node says so when node is older than the Node template needs: 20
# or later (docs/new-node.md); Debian 12's nodejs is 18, on which the
# template's shutdown.drain fails. Said, not fixed here: Node 20 comes from
# Debian 13, NodeSource or nodejs.org.
check_node() {
	command -v node >/dev/null || return 0
	local major
	major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
	if [ "${major:-0}" -lt 20 ]; then
		echo "install-deps: node $(node --version) is older than 20: the Node template's tests will fail shutdown.drain (docs/new-node.md); install Node 20 or later" >&2
	fi
}

debs=(make python3 python3-grpcio python3-protobuf python3-yaml nodejs npm qemu-user-static)
if [ "$(id -u)" = 0 ] && ! command -v dockerd >/dev/null && ! { command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; }; then
	debs+=(docker.io)
fi
missing=()
for p in "${debs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from another source than Debian's packages.
if command -v node >/dev/null && command -v npm >/dev/null; then
	filtered=()
	for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || filtered+=("$p"); done
	missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ ${#missing[@]} -eq 0 ]; then
	check_node
	exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then sudo="sudo"; else
		echo "install-deps: need root to install: ${missing[*]}" >&2
		echo "install-deps: run: apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
check_node
