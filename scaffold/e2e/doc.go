// Package e2e holds the end-to-end tests of oe-rt's templates: for each
// language it builds the oe-rt binary, generates a project with `oe-rt new`,
// builds it and runs its own tests with the language's tools, and runs
// `oe-rt conform --strict` on it, the way the project's Makefile and CI
// workflow do. Every check must pass, the resource checks included.
//
// The tests need each language's tools (go; python3 with Debian's
// python3-grpcio, python3-protobuf and python3-yaml; node and npm; make).
// A missing tool fails the test with what to install: run
// scripts/install-deps.sh. They are skipped with -short.
package e2e
