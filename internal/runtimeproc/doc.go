// Package runtimeproc is how oe-rt's commands run a runtime, so that
// conform and bench find, start, wait for and stop one the same way. It
// sits on package launch, which owns the process (its group, its output,
// its descendants).
//
//   - [Resolve] finds the program: a relative RUNTIME path (one with a
//     slash) under --dir, where the runtime runs, else in the current
//     directory; found in neither, a [*NotFoundError] names both. conform
//     and bench both call it, so `--dir proj ./bin/rt` and
//     `--dir proj proj/bin/rt` work in both.
//   - [Launcher] is the one seam through which a runtime is started:
//     [Native] starts processes through launch.Start; container mode
//     implements it for containers. conform starts its instances through
//     it, in the working directory and environment of a master (package
//     conformance).
//   - [Start] starts a runtime as bench does: the program Resolve found,
//     on a free port of 127.0.0.1 given in the profile's variables
//     (convention.RuntimeEnv), through Native.
//   - [WaitReady] decides "ready", for conform's instances and for the
//     runtime bench started: the gRPC connection is READY (TCP accepted,
//     HTTP/2 and TLS handshakes done), without a call, as the function
//     manager waits for an instance. The connections it watches are made
//     with [DialOptions]; while the runtime refuses, it has gRPC connect
//     again every 10 ms (at most: it never spins). The process's exit or
//     stop (SIGSTOP) ends the wait at once; when the time runs out, the
//     [*NotReadyError] says where the runtime listens instead, if anywhere.
//   - [Runtime.Stop] stops the runtime as conform stops an instance:
//     SIGTERM, SIGKILL after the grace period (at once for a stopped
//     process), then everything of its launch (launch's Terminate and
//     Cleanup).
//
// # Cost
//
// `go test -bench ReadyAfterListen ./internal/runtimeproc/` measures how
// late WaitReady sees a runtime that starts listening; the figures are in
// docs/performance.md ("The launcher").
//
// Linux only, as launch is: elsewhere Start returns launch's error.
package runtimeproc
