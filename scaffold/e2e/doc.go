// Package e2e holds the end-to-end tests of oe-rt's templates: for each
// language it builds the oe-rt binary, generates a project with `oe-rt new`,
// builds it and runs its own tests with the language's tools, and runs
// `oe-rt conform --strict` on it, the way the project's Makefile and CI
// workflow do. Every check must pass, the resource checks included, with
// container mode's limits (50 MiB, 20 threads) enforced by the kernel where
// the machine can (as root on cgroup v1, or with a delegated cgroup v2;
// with OE_RT_TEST_REQUIRE_LIMITS set, it must).
//
// The tests need each language's tools (go; python3 with Debian's
// python3-grpcio, python3-protobuf and python3-yaml; node and npm; make).
// A missing tool fails the test with what to install: run
// scripts/install-deps.sh. They are skipped with -short.
package e2e
