#!/usr/bin/env bash
# Runs all of oe-rt's tests: installs what they need on a fresh machine, then
# vets and runs every Go test with the race detector. The template tests
# (scaffold/e2e) generate each language's runtime, build it with its own
# tools and run `oe-rt conform --strict` on it. They run beside the other
# test packages: conform judges its timing checks (start.time,
# call.concurrent, call.deadline) against the machine at the same moment
# (docs/conformance.md#timing-calibrated-to-the-machine), so the load the
# other packages put on the machine's cores does not fail them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
go vet ./...
go test -race -count=1 -timeout 15m ./...
