#!/usr/bin/env bash
# Runs all of oe-rt's tests: installs what they need on a fresh machine, then
# vets, cross-compiles for darwin and windows, and runs every Go test with
# the race detector. The template tests
# (scaffold/e2e) generate each language's runtime, build it with its own
# tools and run `oe-rt conform --strict` on it; they run last and alone, so
# that the timing checks (start.time, call.concurrent) measure the runtime,
# not the other test packages sharing the machine's two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
go vet ./...
# oe-rt builds for every platform a runtime author may work on; what needs
# Linux (/proc, cgroups, the subreaper) says so at run time there.
for goos in darwin windows; do
	GOOS=$goos GOARCH=amd64 go build -o /dev/null ./...
done
go test -race -count=1 -timeout 10m $(go list ./... | grep -v /scaffold/e2e)
go test -count=1 -timeout 15m ./scaffold/e2e
