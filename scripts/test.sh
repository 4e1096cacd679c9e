#!/usr/bin/env bash
# Runs all of oe-rt's tests: installs what they need on a fresh machine, then
# vets, cross-compiles for darwin and windows, and runs every Go test with
# the race detector. The template tests (scaffold/e2e) generate each
# language's runtime, build it with its own tools and run
# `oe-rt conform --strict` on it. conform judges its timing checks against
# the machine at the same moment (docs/conformance.md#timing-calibrated-to-
# the-machine), so the templates would pass beside the other packages too;
# they run last, alone, for the other packages' sake: the conformance tests'
# race-built fake runtimes start slowly when npm and Python share the
# machine's two cores.
#
# The limits --limit-memory/--limit-threads enforce (a cgroup per runtime
# instance) are tested on the reference runtime, the launcher and every
# template wherever the machine allows: as root with cgroup v1, or with
# cgroup v2's memory and pids controllers. There OE_RT_TEST_REQUIRE_LIMITS
# is set, and a test that finds it cannot enforce them fails instead of
# skipping; elsewhere those tests are skipped and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
if [ "$(id -u)" = 0 ] && { { [ -w /sys/fs/cgroup/memory ] && [ -w /sys/fs/cgroup/pids ]; } ||
	grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; }; then
	export OE_RT_TEST_REQUIRE_LIMITS=1
	echo "test.sh: root with writable cgroups: the enforced-limit tests must run (OE_RT_TEST_REQUIRE_LIMITS=1)"
else
	echo "test.sh: not root, or no writable cgroups: the enforced-limit tests may be skipped (each says why)"
fi
go vet ./...
# oe-rt builds for every platform a runtime author may work on; what needs
# Linux (/proc, cgroups, the subreaper) says so at run time there.
for goos in darwin windows; do
	GOOS=$goos GOARCH=amd64 go build -o /dev/null ./...
done
go test -race -count=1 -timeout 10m $(go list ./... | grep -v /scaffold/e2e)
go test -count=1 -timeout 15m ./scaffold/e2e
