#!/usr/bin/env bash
# load-verdicts.sh: runs `oe-rt conform --strict` N times on each correct
# runtime while the machine runs CPU-bound processes beside it, and prints
# how many runs did not end PASSED, per runtime, with the checks that did
# not pass. A correct runtime must never get a false verdict from a busy
# machine (docs/conformance.md, "Waiting on a busy machine"; the figures
# measured here are in docs/performance.md, "Conform under load").
#
#   scripts/load-verdicts.sh [-n RUNS] [-l HOGS_PER_CORE] [RUNTIME...]
#
# RUNTIME is any of serve (oe-rt's reference), go, python, node (the
# templates as `oe-rt new` generates them, built with their own tools) and
# baetyl-like (a Python runtime built like Baetyl's: one process, grpcio's
# thread pool; scripts/testdata/baetyl_like.py). Default: all five, 10 runs
# each, 3 busy loops per core. The hogs are ended when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=10
per_core=3
while getopts "n:l:" o; do
	case $o in
	n) runs=$OPTARG ;;
	l) per_core=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] [-l HOGS_PER_CORE] [serve|go|python|node|baetyl-like ...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- serve go python node baetyl-like

work=$(mktemp -d)
hogs=()
cleanup() {
	for p in "${hogs[@]+"${hogs[@]}"}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/oe-rt" ./cmd/oe-rt
oert=$work/oe-rt
export PATH="$work:$PATH"

# project LANG: a generated, built project of the template (once).
project() {
	local dir=$work/rt-$1
	if [ ! -d "$dir" ]; then
		"$oert" new "rt-$1" --dir "$dir" --lang "$1" >/dev/null || return 1
		make -C "$dir" build >/dev/null || return 1
	fi
	echo "$dir"
}

# conform_of RUNTIME: the conform command line for it, run in its directory.
conform_of() {
	case $1 in
	serve) echo "cd $work && $oert conform --strict --format json" ;;
	go) d=$(project go) && echo "cd $d && $oert conform --strict --format json ./bin/rt-go -- -c etc/openedge/service.yml" ;;
	python | node) d=$(project "$1") && echo "cd $d && $oert conform --strict --format json ./bin/runtime -- -c etc/openedge/service.yml" ;;
	baetyl-like) d=$(project python) && echo "cd $work && OE_RT_PY_PROJECT=$d $oert conform --strict --format json $d/bin/python -- $PWD/scripts/testdata/baetyl_like.py" ;;
	*) echo "load-verdicts: unknown runtime $1" >&2; exit 2 ;;
	esac
}

# Build everything before the hogs start.
cmds=()
for rt in "$@"; do
	c=$(conform_of "$rt") || { echo "load-verdicts: could not prepare $rt" >&2; exit 2; }
	cmds+=("$c")
done

cores=$(nproc)
for _ in $(seq $((cores * per_core))); do
	(while :; do :; done) &
	hogs+=($!)
done
echo "load-verdicts: $runs runs of each of $*, beside $((cores * per_core)) busy loops on $cores cores" >&2

i=0
for rt in "$@"; do
	cmd=${cmds[$i]}
	i=$((i + 1))
	bad=0
	reasons=$work/reasons-$rt
	: >"$reasons"
	for n in $(seq "$runs"); do
		out=$work/run-$rt-$n.json
		t0=$(date +%s.%N)
		bash -c "$cmd" >"$out" 2>"$work/stderr" || true
		t1=$(date +%s.%N)
		load=$(cut -d' ' -f1 /proc/loadavg)
		verdict=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' "$out" 2>/dev/null || echo "no report")
		if [ "$verdict" != passed ]; then
			bad=$((bad + 1))
			python3 - "$out" >>"$reasons" <<'EOF' || echo "  (no report: $(head -c 300 "$work/stderr"))" >>"$reasons"
import json, sys
rep = json.load(open(sys.argv[1]))
for c in rep["checks"]:
    if c["status"] not in ("pass", "skip"):
        print("  %s %s: %s" % (c["status"], c["id"], c.get("message", "")[:300]))
EOF
		fi
		printf 'load-verdicts: %-12s run %2d: %-8s %5.1f s, load %s\n' "$rt" "$n" "$verdict" "$(awk "BEGIN{print $t1 - $t0}")" "$load" >&2
	done
	printf '%-12s %d of %d runs not PASSED\n' "$rt" "$bad" "$runs"
	sort "$reasons" | uniq -c | sed 's/^/  /'
done
