#!/usr/bin/env bash
# vs-baetyl-python.sh: oe-rt's Python template beside Baetyl's own Python 3
# runtime, through the same client, in one run.
#
#   bench/vs-baetyl-python.sh BAETYL_CHECKOUT
#
# BAETYL_CHECKOUT is a checkout of github.com/baetyl/baetyl at a 1.x tag
# (1.0.0 was measured): its baetyl-function-python3/function-python3.py
# and generated function_pb2*.py are copied into a temporary directory,
# never into this repository. The script builds oe-rt, generates a Python
# project with `oe-rt new`, and gives both runtimes the same echo function
# (`return event`) under the baetyl profile, each started by `oe-rt bench`
# as the master starts an instance (etc/baetyl/service.yml, no -c), which
# measures its peak RSS (the process tree) as well as the calls per second.
# Two loads: C concurrent callers (`bench -c 16`), and one call at a time,
# as the function manager calls an instance. Each load runs ROUNDS times,
# alternating which runtime goes first.
#
# Environment (defaults in brackets):
#   C [16]        concurrent callers of the first load
#   N [5000]      calls per run
#   PAYLOAD       the payload of every call [a 1 KiB JSON object]
#   ROUNDS [3]    rounds per load
#   PYTHON        the python3 both run with [/usr/bin/python3, else python3]:
#                 it needs grpcio, protobuf and PyYAML
#
# Prints one line per run and, per load, the median calls per second and
# peak RSS of each and their ratios (oe-rt / Baetyl). Exit status 0 when
# the runs completed without errors.
set -euo pipefail
if [[ $# -ne 1 || ! -f $1/baetyl-function-python3/function-python3.py ]]; then
	echo "usage: $0 BAETYL_CHECKOUT (a checkout of github.com/baetyl/baetyl at a 1.x tag, with baetyl-function-python3/function-python3.py)" >&2
	exit 2
fi
baetyl_src=$(cd "$1/baetyl-function-python3" && pwd)
cd "$(dirname "$0")/.."

C=${C:-16}
N=${N:-5000}
ROUNDS=${ROUNDS:-3}
PAYLOAD=${PAYLOAD:-$(printf '{"message":"%s","n":42,"ok":true}' "$(head -c 486 /dev/zero | tr '\0' x)")}
if [[ -z ${PYTHON:-} ]]; then
	PYTHON=python3
	[[ -x /usr/bin/python3 ]] && PYTHON=/usr/bin/python3
fi
"$PYTHON" -c 'import grpc, google.protobuf, yaml' || { echo "$PYTHON lacks grpcio, protobuf or PyYAML" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "building oe-rt; generating the Python project; copying Baetyl's runtime into $tmp" >&2
go build -o "$tmp/oe-rt" ./cmd/oe-rt
"$tmp/oe-rt" new vsbaetyl --lang python --dir "$tmp/oe" >/dev/null
(cd "$tmp/oe" && PYTHON=$PYTHON make build >/dev/null)

# Baetyl's runtime, laid out as its package and volumes would be.
mkdir -p "$tmp/baetyl/etc/baetyl" "$tmp/baetyl/var/db/baetyl/function-echo"
cp "$baetyl_src"/function-python3.py "$baetyl_src"/function_pb2.py "$baetyl_src"/function_pb2_grpc.py "$tmp/baetyl/"
printf 'def handler(event, context):\n    return event\n' >"$tmp/baetyl/var/db/baetyl/function-echo/index.py"
cat >"$tmp/baetyl/etc/baetyl/service.yml" <<'EOF'
name: baetyl-python3
server:
  address: 127.0.0.1:0
  timeout: 5000000000
functions:
  - name: echo
    handler: index.handler
    codedir: var/db/baetyl/function-echo
EOF

# run NAME C: one bench run; prints "rps peak_rss_mib".
run() {
	local name=$1 c=$2 out="$tmp/$1.json"
	if [[ $name == oe-rt ]]; then
		(cd "$tmp/oe" && PYTHON=$PYTHON "$tmp/oe-rt" bench --profile baetyl -c "$c" -n "$N" --warmup 1s \
			--payload "$PAYLOAD" --format json -o "$out" ./bin/runtime)
	else
		(cd "$tmp/baetyl" && "$tmp/oe-rt" bench --profile baetyl -c "$c" -n "$N" --warmup 1s \
			--payload "$PAYLOAD" --format json -o "$out" "$PYTHON" -- function-python3.py)
	fi
	"$PYTHON" - "$out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
if d["errors"]:
    sys.exit("bench saw %d errors" % d["errors"])
print(d["rps"], d["runtime"]["peak_rss_mib"])
EOF
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

for c in "$C" 1; do
	: >"$tmp/oe-rt.rps"; : >"$tmp/oe-rt.rss"; : >"$tmp/baetyl.rps"; : >"$tmp/baetyl.rss"
	for r in $(seq "$ROUNDS"); do
		order="oe-rt baetyl"
		((r % 2 == 0)) && order="baetyl oe-rt"
		for name in $order; do
			read -r rps rss < <(run "$name" "$c")
			echo "c=$c round $r $name: $rps calls/s, peak RSS $rss MiB"
			echo "$rps" >>"$tmp/$name.rps"
			echo "$rss" >>"$tmp/$name.rss"
		done
	done
	o_rps=$(median <"$tmp/oe-rt.rps"); b_rps=$(median <"$tmp/baetyl.rps")
	o_rss=$(median <"$tmp/oe-rt.rss"); b_rss=$(median <"$tmp/baetyl.rss")
	awk -v c="$c" -v or="$o_rps" -v br="$b_rps" -v om="$o_rss" -v bm="$b_rss" 'BEGIN {
		printf "c=%s median: oe-rt %.0f calls/s, %.1f MiB; Baetyl %.0f calls/s, %.1f MiB; oe-rt/Baetyl: %.2fx calls/s, %.2fx memory\n", c, or, om, br, bm, or/br, om/bm }'
done
