#!/usr/bin/env bash
# Makes a Docker engine answer for oe-rt's container tests, or stops the one
# this script started.
#
#   eval "$(./scripts/docker-engine.sh start)"   # prints export DOCKER_HOST=…
#   ./scripts/docker-engine.sh stop
#
# start: when an engine already answers (DOCKER_HOST, or the default
# socket), it prints nothing and leaves it alone. Otherwise it installs
# Debian's docker.io when dockerd is missing (as root, through apt-get), and
# starts a private daemon of its own under $OE_RT_DOCKER_DIR (default
# /tmp/oe-rt-docker): its own data root, socket and pid file, the vfs
# storage driver (it works on any file system, in a VM or a container), no
# iptables rules and no default bridge, so that it changes nothing of the
# machine's networking. It prints the DOCKER_HOST to use and waits (at most
# 60 s) until the engine answers; when it started the daemon itself (not
# found one of its own already running), it also prints
# OE_RT_DOCKER_STARTED=1, so that the caller stops only what it started.
#
# stop: ends the private daemon (SIGTERM, then SIGKILL after 20 s) and its
# containerd; the data root stays, so that images built once are there the
# next time.
set -euo pipefail

dir=${OE_RT_DOCKER_DIR:-/tmp/oe-rt-docker}
sock=$dir/docker.sock
host=unix://$sock

answers() { timeout 10 docker ${1:+-H "$1"} info >/dev/null 2>&1; }

start() {
	if command -v docker >/dev/null && answers ""; then
		return 0
	fi
	if [ -S "$sock" ] && answers "$host"; then
		echo "export DOCKER_HOST=$host"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "docker-engine: no Docker engine answers, and only root can start one here" >&2
		return 1
	fi
	if ! command -v dockerd >/dev/null; then
		echo "docker-engine: installing Debian's docker.io" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends docker.io >/dev/null
	fi
	mkdir -p "$dir"
	# The package's own service may not run here (no systemd); ours is
	# private and leaves no rule behind.
	echo "export OE_RT_DOCKER_STARTED=1"
	nohup dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "$host" \
		--pidfile "$dir/dockerd.pid" --storage-driver vfs \
		--iptables=false --ip6tables=false --bridge=none \
		>"$dir/dockerd.log" 2>&1 </dev/null &
	for _ in $(seq 120); do
		if [ -S "$sock" ] && answers "$host"; then
			echo "export DOCKER_HOST=$host"
			return 0
		fi
		sleep 0.5
	done
	echo "docker-engine: the private dockerd did not answer within 60 s; its log ends with:" >&2
	tail -n 20 "$dir/dockerd.log" >&2 || true
	return 1
}

stop() {
	local pid
	pid=$(cat "$dir/dockerd.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 40); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.5
	done
	kill -KILL "$pid" 2>/dev/null || true
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac
