#!/usr/bin/env bash
# compare-ghz.sh: is oe-rt bench's load generator at least as fast as ghz?
#
# Starts bench/bareserver (a bare grpc-go server whose Call returns the
# request untouched) on a free port of 127.0.0.1, then runs `oe-rt bench`
# and ghz against it in turn, ROUNDS times, at equal concurrency, call count,
# connection count and payload, and prints each round's throughput and the
# ratio oe-rt/ghz. The order alternates from round to round, so that neither
# tool always runs on a warmer (or more loaded) machine. Client and server
# share the machine's cores: a heavier generator leaves the server less CPU,
# which is exactly what this measures.
#
# Environment (defaults in brackets):
#   C [50]          concurrent callers of each tool
#   N [100000]      calls per run
#   SIZE [1024]     payload bytes (random, the same for both tools)
#   ROUNDS [3]      rounds of (oe-rt, ghz)
#   GHZ             a ghz binary to use; by default ghz GHZ_VERSION is
#                   installed with `go install` into a temporary GOBIN
#   GHZ_VERSION [v0.120.0]  pinned: through the module proxy `@latest`
#                   resolves to the much older v0.93.0
#
# Needs: go, base64, awk. Exit status 0 when oe-rt bench's total throughput
# is at least ghz's, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

C=${C:-50}
N=${N:-100000}
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-3}
GHZ_VERSION=${GHZ_VERSION:-v0.120.0}

tmp=$(mktemp -d)
server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "building oe-rt and bench/bareserver" >&2
go build -o "$tmp/oe-rt" ./cmd/oe-rt
go build -o "$tmp/bareserver" ./bench/bareserver
if [[ -z ${GHZ:-} ]]; then
	echo "installing ghz $GHZ_VERSION into a temporary GOBIN" >&2
	GOBIN="$tmp/bin" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
	GHZ=$tmp/bin/ghz
fi

# start_server: the bare server on a free port; sets server_pid and addr.
"$tmp/bareserver" -address 127.0.0.1:0 >"$tmp/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
	grep -q '^listening on ' "$tmp/server.out" && break
	sleep 0.05
done
addr=$(sed -n 's/^listening on //p' "$tmp/server.out")
[[ -n $addr ]] || { echo "bareserver did not start:" >&2; cat "$tmp/server.out" >&2; exit 1; }

head -c "$SIZE" /dev/urandom >"$tmp/payload"
printf '{"FunctionName":"echo","Payload":"%s"}' "$(base64 -w0 <"$tmp/payload")" >"$tmp/ghz-data.json"

# json_num FILE KEY: the first number after "KEY": in a JSON file.
json_num() { grep -o "\"$2\": *[0-9.e+-]*" "$1" | head -1 | sed 's/.*: *//'; }

run_oert() {
	"$tmp/oe-rt" bench --address "$addr" -c "$C" -n "$N" --connections 1 \
		--payload-file "$tmp/payload" --format json >"$tmp/oert.json"
	json_num "$tmp/oert.json" errors | grep -qx 0 || { echo "oe-rt bench saw errors" >&2; cat "$tmp/oert.json" >&2; exit 1; }
	json_num "$tmp/oert.json" rps
}

run_ghz() {
	"$GHZ" --insecure --proto proto/openedge/function.proto --call openedge.Function.Call \
		-c "$C" -n "$N" --connections 1 -D "$tmp/ghz-data.json" -O json "$addr" >"$tmp/ghz.json"
	# ghz's JSON has no error total; its status code counts must be OK only.
	grep -o '"statusCodeDistribution":{[^}]*}' "$tmp/ghz.json" | grep -q '^"statusCodeDistribution":{"OK":'"$N"'}$' ||
		{ echo "ghz saw errors:" >&2; grep -o '"statusCodeDistribution":{[^}]*}' "$tmp/ghz.json" >&2; exit 1; }
	json_num "$tmp/ghz.json" rps
}

echo "bare grpc-go server at $addr; $C callers, $N calls of $SIZE bytes, 1 connection, $ROUNDS rounds"
printf '%-6s %14s %14s %8s\n' round "oe-rt calls/s" "ghz calls/s" ratio
sum_o=0 sum_g=0
for r in $(seq "$ROUNDS"); do
	if ((r % 2)); then
		o=$(run_oert)
		g=$(run_ghz)
	else
		g=$(run_ghz)
		o=$(run_oert)
	fi
	printf '%-6s %14.0f %14.0f %8.2f\n' "$r" "$o" "$g" "$(awk -v a="$o" -v b="$g" 'BEGIN{print a/b}')"
	sum_o=$(awk -v a="$sum_o" -v b="$o" 'BEGIN{print a+b}')
	sum_g=$(awk -v a="$sum_g" -v b="$g" 'BEGIN{print a+b}')
done
ratio=$(awk -v a="$sum_o" -v b="$sum_g" 'BEGIN{printf "%.2f", a/b}')
echo "oe-rt bench / ghz throughput over all rounds: ${ratio}x (ghz $(go version -m "$GHZ" | awk '$1=="mod"{print $3}'))"
awk -v r="$ratio" 'BEGIN{exit !(r >= 1)}'
