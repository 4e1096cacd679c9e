#!/usr/bin/env bash
# Runs all of oe-rt's tests: installs what they need on a fresh machine, then
# vets and runs every Go test with the race detector. The template tests
# generate each language's runtime, build it with its own tools and run
# `oe-rt conform --strict` on it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
go vet ./...
go test -race -count=1 -timeout 15m ./...
