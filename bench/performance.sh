#!/usr/bin/env bash
# performance.sh: regenerates the figures of docs/performance.md.
#
# Everything is measured in this one run, on this machine, and compared as
# ratios within the run (absolute figures move with the machine's load):
#   1. throughput of `oe-rt serve` against bench/bareserver (a bare grpc-go
#      server whose Call returns the request untouched), and of the Python
#      and Node template runtimes when given (see PYTHON_RUNTIME below):
#      `oe-rt bench --address` on each in turn, ROUNDS rounds, the order
#      rotating from round to round;
#   2. peak RSS and threads under 64 concurrent callers;
#   3. start-up time to the first answered Call;
#   4. the wall time of `oe-rt conform` on the reference runtime.
# Items 2 and 3 come from `oe-rt bench RUNTIME` (bench starts the runtime
# and samples its process tree) when this build can start runtimes; until
# then the script reads /proc of the single-process servers it started
# itself (VmHWM is the kernel's exact peak RSS; threads sampled every 50ms).
#
# Environment (defaults in brackets):
#   C [64]           concurrent callers
#   DURATION [3s]    measured time per run (after WARMUP [1s])
#   SIZE [1k]        payload size (random bytes)
#   ROUNDS [5]       rounds over all runtimes; the ratio to the bare server
#                    is taken within each round, and the median reported
#   PYTHON_RUNTIME, NODE_RUNTIME   command line of a generated template
#                    runtime (e.g. "bin/myrt"), run with sh -c in
#                    PYTHON_RUNTIME_DIR / NODE_RUNTIME_DIR (default: the
#                    current directory); it must serve the echo fixture.
#
# Output: the markdown table of docs/performance.md on stdout, progress on
# stderr. Needs: go, awk, grep, sed.
set -euo pipefail
cd "$(dirname "$0")/.."

C=${C:-64}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
SIZE=${SIZE:-1k}
ROUNDS=${ROUNDS:-5}

tmp=$(mktemp -d)
declare -A pid addr
cleanup() {
	local n
	for n in "${!pid[@]}"; do stop "$n"; done
	rm -rf "$tmp"
}
trap cleanup EXIT
log() { echo "performance.sh: $*" >&2; }

log "building oe-rt and bench/bareserver"
go build -o "$tmp/oe-rt" ./cmd/oe-rt
go build -o "$tmp/bareserver" ./bench/bareserver
oert=$tmp/oe-rt

free_port() {
	# Listen on port 0 with the bare server's own flag would be simpler, but
	# every runtime must take its address from the environment: ask the
	# kernel for a free port through a short-lived listener.
	"$tmp/bareserver" -address 127.0.0.1:0 >"$tmp/port.out" 2>&1 &
	local p=$!
	for _ in $(seq 100); do grep -q '^listening on ' "$tmp/port.out" && break; sleep 0.02; done
	kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null || true
	sed -n 's/^listening on 127.0.0.1://p' "$tmp/port.out"
}

# start NAME DIR CMD: runs CMD (sh -c) in DIR with the convention's address
# variable set to a free port and waits until it answers echo.
start() {
	local name=$1 dir=$2 cmd=$3 port
	port=$(free_port)
	addr[$name]=127.0.0.1:$port
	(cd "$dir" && OPENEDGE_SERVICE_ADDRESS=${addr[$name]} OPENEDGE_SERVICE_NAME=$name exec sh -c "exec $cmd") >"$tmp/$name.log" 2>&1 &
	pid[$name]=$!
	for _ in $(seq 300); do
		if "$oert" call --address "${addr[$name]}" --timeout 1s echo ping >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "${pid[$name]}" 2>/dev/null || break
		sleep 0.05
	done
	log "$name did not answer echo at ${addr[$name]}:"
	cat "$tmp/$name.log" >&2
	exit 1
}

# stop NAME: SIGTERM, SIGKILL after 10s, and wait.
stop() {
	local name=$1 p=${pid[$1]:-}
	[[ -n $p ]] || return 0
	kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	unset "pid[$name]"
}

json_num() { grep -o "\"$2\": *[0-9.e+-]*" "$1" | head -1 | sed 's/.*: *//'; }
calc() { awk "BEGIN{printf \"$1\", $2}"; }

# max_threads NAME: sample the thread count of NAME's process every 50ms
# into $tmp/NAME.threads until it is killed.
sample_threads() {
	local p=$1 out=$2 max=0 t
	while kill -0 "$p" 2>/dev/null; do
		t=$(awk '/^Threads:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		((t > max)) && max=$t && echo "$max" >"$out"
		sleep 0.05
	done
}

runtimes=(bare serve)
start bare . "$tmp/bareserver -address \$OPENEDGE_SERVICE_ADDRESS"
start serve . "$oert serve"
if [[ -n ${PYTHON_RUNTIME:-} ]]; then
	start python "${PYTHON_RUNTIME_DIR:-.}" "$PYTHON_RUNTIME"
	runtimes+=(python)
fi
if [[ -n ${NODE_RUNTIME:-} ]]; then
	start node "${NODE_RUNTIME_DIR:-.}" "$NODE_RUNTIME"
	runtimes+=(node)
fi
declare -A sampler
for n in "${runtimes[@]}"; do
	echo 0 >"$tmp/$n.threads"
	sample_threads "${pid[$n]}" "$tmp/$n.threads" &
	sampler[$n]=$!
done

declare -A sum p50 p99
for n in "${runtimes[@]}"; do sum[$n]=0; done
order=("${runtimes[@]}")
for r in $(seq "$ROUNDS"); do
	for n in "${order[@]}"; do
		log "round $r: $n"
		"$oert" bench --address "${addr[$n]}" -c "$C" -z "$DURATION" --warmup "$WARMUP" \
			--payload-size "$SIZE" --format json --assert errors=0 >"$tmp/$n.$r.json"
		rps=$(json_num "$tmp/$n.$r.json" rps)
		sum[$n]=$(calc %.1f "${sum[$n]} + $rps")
		echo "$rps" >>"$tmp/$n.rounds"
	done
	order=("${order[@]:1}" "${order[0]}")
done
declare -A rss threads
for n in "${runtimes[@]}"; do
	rss[$n]=$(awk '/^VmHWM:/{printf "%.1f", $2/1024}' "/proc/${pid[$n]}/status")
	threads[$n]=$(cat "$tmp/$n.threads")
	p50[$n]=$(json_num "$tmp/$n.$ROUNDS.json" p50)
	p99[$n]=$(json_num "$tmp/$n.$ROUNDS.json" p99)
done
for n in "${runtimes[@]}"; do stop "$n"; kill "${sampler[$n]}" 2>/dev/null || true; wait "${sampler[$n]}" 2>/dev/null || true; done

# Start-up, and RSS/threads of the whole process tree, through oe-rt bench
# starting the runtime itself, when this build can.
launch_ok=1
"$oert" bench -n 1 "$oert" -- serve >"$tmp/probe.out" 2>&1 || launch_ok=0

conform_line="| conform wall time on oe-rt serve | TODO: \`oe-rt conform\` is not in this build yet; rerun bench/performance.sh once it is |"
if "$oert" conform --help >/dev/null 2>&1; then
	log "conform on oe-rt serve"
	t0=$(date +%s%N)
	if "$oert" conform "$oert" -- serve >"$tmp/conform.out" 2>&1; then verdict=passed; else verdict="FAILED (see its output)"; fi
	t1=$(date +%s%N)
	conform_line="| conform wall time on oe-rt serve | $(calc %.2f "($t1 - $t0) / 1e9") s ($verdict) |"
fi

echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), $(go version | awk '{print $3}'), by bench/performance.sh:"
echo "$C callers on one connection, payload $SIZE random bytes to echo, $ROUNDS rounds of $DURATION (after $WARMUP warm-up) per runtime, rotating order."
echo
echo "| runtime | calls/s (mean of rounds) | × bare grpc-go (median of rounds) | × bare (all rounds) | p50 ms | p99 ms | peak RSS MiB | peak threads |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for n in "${runtimes[@]}"; do
	mean=$(calc %.0f "${sum[$n]} / $ROUNDS")
	ratio=$(calc %.3f "${sum[$n]} / ${sum[bare]}")
	median=$(paste "$tmp/$n.rounds" "$tmp/bare.rounds" | awk '{printf "%.3f\n", $1/$2}' | sort -n |
		awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}')
	label=$n
	case $n in bare) label="bare grpc-go (bench/bareserver)" ;; serve) label="oe-rt serve" ;; python) label="Python template" ;; node) label="Node template" ;; esac
	echo "| $label | $mean | $median | $ratio | ${p50[$n]} | ${p99[$n]} | ${rss[$n]} | ${threads[$n]} |"
done
echo
echo "Per-round calls/s, p50/p99 from the last round (the spread shows the noise):"
echo
for n in "${runtimes[@]}"; do echo "- $n: $(paste -sd' ' "$tmp/$n.rounds")"; done
echo
echo "| measure | value |"
echo "|---|---|"
if ((launch_ok)); then
	# Start-up, alternating the bare server and serve, 11 times each; the
	# medians and their ratio (the goal: serve within 1.2x the bare server).
	: >"$tmp/start.bare"; : >"$tmp/start.serve"
	for i in $(seq 11); do
		"$oert" bench -n 1 --format json "$tmp/bareserver" >"$tmp/startup.json" && json_num "$tmp/startup.json" startup_ms >>"$tmp/start.bare"
		"$oert" bench -n 1 --format json "$oert" -- serve >"$tmp/startup.json" && json_num "$tmp/startup.json" startup_ms >>"$tmp/start.serve"
	done
	med() { sort -n "$1" | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
	sb=$(med "$tmp/start.bare"); ss=$(med "$tmp/start.serve")
	echo "| start-up to first answered Call (median of 11, alternating) | bare grpc-go $sb ms, oe-rt serve $ss ms: $(calc %.2f "$ss / $sb")x |"
else
	echo "| start-up to first answered Call | TODO: needs \`oe-rt bench RUNTIME\` (internal/launch); rerun bench/performance.sh once it is in |"
fi
echo "$conform_line"
[[ -n ${PYTHON_RUNTIME:-} ]] || echo "| Python template | not measured: set PYTHON_RUNTIME (and PYTHON_RUNTIME_DIR) to a generated runtime |"
[[ -n ${NODE_RUNTIME:-} ]] || echo "| Node template | not measured: set NODE_RUNTIME (and NODE_RUNTIME_DIR) to a generated runtime |"
echo
echo "RSS is the kernel's high-water mark (VmHWM) of the runtime's process; threads the highest count seen in /proc every 50ms."
