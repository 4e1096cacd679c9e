#!/usr/bin/env bash
# Runs all of oe-rt's tests: installs what they need on a fresh machine, then
# vets, cross-compiles (darwin, windows; the linux release builds for amd64,
# arm64 and arm v7 are a test), and runs every Go test with the race
# detector. The
# template tests (scaffold/e2e) generate each language's runtime, build it
# with its own tools and run `oe-rt conform --strict` on it; they run beside
# the others, in the background, after the container tests' base images
# are made (a correct runtime must pass on a busy machine, and the other
# tests must hold beside a busy one: docs/conformance.md, "Waiting on a
# busy machine"), and are reported after them. The image tests (each
# template's image under `conform --image --strict`, in its container's
# 50M/20 limits) run last, alone: container mode's time budget is the
# engine's too, and the Go tests' load beside it spent it (docs/container.md).
#
# Every step runs even when an earlier one fails; the last lines list each
# step with its time and, for a failure, the failed packages and tests. The
# exit status is 0 only when every step passed. docs/performance.md ("The
# test command") says what takes the time.
#
# The limits --limit-memory/--limit-threads enforce (a cgroup per runtime
# instance) are tested on the reference runtime, the launcher and every
# template wherever the machine allows: as root with cgroup v1, or with
# cgroup v2's memory and pids controllers. There OE_RT_TEST_REQUIRE_LIMITS
# is set, and a test that finds it cannot enforce them fails instead of
# skipping; elsewhere those tests are skipped and say why.
set -uo pipefail
cd "$(dirname "$0")/.."
# Every go command here and in the tests (which build oe-rt, the fakes and
# the Go template) builds with -trimpath: what a build caches is then the
# same in every clone, so a fresh clone compiles only what changed, not
# the whole tree again for each of the nine configurations the steps
# build (docs/performance.md, "The test command").
GOFLAGS="$(go env GOFLAGS) -trimpath"
export GOFLAGS="${GOFLAGS# }"
./scripts/install-deps.sh || { echo "test.sh: installing the test dependencies failed" >&2; exit 2; }
if [ "$(id -u)" = 0 ] && { { [ -w /sys/fs/cgroup/memory ] && [ -w /sys/fs/cgroup/pids ]; } ||
	grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; }; then
	export OE_RT_TEST_REQUIRE_LIMITS=1
	echo "test.sh: root with writable cgroups: the enforced-limit tests must run (OE_RT_TEST_REQUIRE_LIMITS=1)"
else
	echo "test.sh: not root, or no writable cgroups: the enforced-limit tests may be skipped (each says why)"
fi

# The container tests (conform --image, the template images) need a Docker
# engine: one that answers, or a private daemon docker-engine.sh starts (and
# this script stops at the end). As root the engine must run, and those
# tests fail instead of skipping (OE_RT_TEST_REQUIRE_DOCKER=1). The local
# base images the template images build FROM are made in the background
# meanwhile (base-images.sh: no registry is needed), and waited for before
# the template tests.
engine_started=""
if engine_env=$(./scripts/docker-engine.sh start); then
	eval "$engine_env"
	engine_started=${OE_RT_DOCKER_STARTED:-}
	[ "$(id -u)" = 0 ] && export OE_RT_TEST_REQUIRE_DOCKER=1
	echo "test.sh: a Docker engine answers${DOCKER_HOST:+ at $DOCKER_HOST}: the container tests must run"
else
	echo "test.sh: no Docker engine: the container tests are skipped (each says why)"
fi

# The background job: the base images (only where the container tests must
# run), then the template tests, each with its output, exit status and time
# in $bg. In a session of its own, so that an early end of this script ends
# its go, npm, apt and docker children too (kill of the group, in finish).
bg=$(mktemp -d)
images='TestTemplateImages|TestServeImage|TestImageChecksCatchHostileImages'
bases=""
[ -n "${OE_RT_TEST_REQUIRE_DOCKER:-}" ] && [ -x scripts/base-images.sh ] && bases=1
# shellcheck disable=SC2016 # expanded by the job's own shell
setsid bash -c '
	bg=$1 bases=$2
	run() { # NAME COMMAND...: output to $bg/NAME.log, "status seconds" to $bg/NAME.rc
		local name=$1 t0=$SECONDS
		shift
		"$@" >"$bg/$name.log" 2>&1
		echo "$? $((SECONDS - t0))" >"$bg/$name.rc"
	}
	[ -n "$bases" ] && run bases ./scripts/base-images.sh
	run templates go test -count=1 -timeout 20m -skip "$3" ./scaffold/e2e
' bg "$bg" "$bases" "$images" &
bg_pid=$!

# The release test (cmd/oe-rt) runs the ARM builds' `oe-rt version` under
# qemu-user-static, which install-deps.sh installs: here it must run.
export OE_RT_TEST_REQUIRE_QEMU=1

log=$(mktemp)
finish() {
	[ -n "$bg_pid" ] && kill -- "-$bg_pid" 2>/dev/null && wait "$bg_pid" 2>/dev/null
	[ -n "$engine_started" ] && ./scripts/docker-engine.sh stop
	rm -rf "$log" "$bg"
}
trap finish EXIT
summary=()
passed=0
failed=0
began=$SECONDS

# step NAME COMMAND...: runs COMMAND, its output shown as it comes and kept
# for the summary; never stops the script. With took set, that is the
# step's time (a step of the background job, whose log COMMAND shows).
step() {
	local name=$1
	shift
	echo "test.sh: == $name"
	local t0=$SECONDS
	"$@" 2>&1 | tee -a "$log"
	local rc=${PIPESTATUS[0]}
	took=${took:-$((SECONDS - t0))}
	if [ "$rc" = 0 ]; then
		summary+=("  ok    $name ($took s)")
		passed=$((passed + 1))
	else
		summary+=("  FAIL  $name ($took s, exit $rc)")
		failed=$((failed + 1))
	fi
	took=""
}
took=""

# bg_step NAME TITLE: reports the background job's step NAME as a step.
bg_step() {
	local rc=1 secs=0
	[ -f "$bg/$1.rc" ] && read -r rc secs <"$bg/$1.rc"
	[ -f "$bg/$1.rc" ] || echo "test.sh: $2 did not finish" >>"$bg/$1.log"
	took=$secs step "$2" sh -c 'cat "$1"; exit "$2"' sh "$bg/$1.log" "$rc"
}

step "go vet" go vet ./...
# oe-rt builds for every platform a runtime author may work on; what needs
# Linux (/proc, cgroups, the subreaper) says so at run time there.
for goos in darwin windows; do
	step "build $goos/amd64" env GOOS=$goos GOARCH=amd64 go build -o /dev/null ./...
done
# The release builds for where OpenEdge runs (linux/amd64, arm64 and arm
# v7) are cmd/oe-rt's TestReleaseBuilds, in the race step: it builds each
# as a release is built and runs its `oe-rt version` (under qemu for ARM).
# shellcheck disable=SC2046 # one word per package
step "go test -race" go test -race -count=1 -timeout 20m $(go list ./... | grep -v /scaffold/e2e)
# The background job, waited for here, then its steps reported.
wait "$bg_pid"
bg_pid=""
[ -n "$bases" ] && bg_step bases "base images (scripts/base-images.sh)"
bg_step templates "templates (scaffold/e2e)"
step "template images (scaffold/e2e)" go test -count=1 -timeout 20m -run "$images" ./scaffold/e2e
echo
echo "test.sh: summary ($((SECONDS - began)) s in all)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
	echo "test.sh: what failed:"
	grep -E '^(--- FAIL|FAIL[[:space:]]|panic:)' "$log" | sed 's/^/  /' | sort -u | head -50
fi
echo "test.sh: $passed passed, $failed failed"
[ "$failed" = 0 ]
