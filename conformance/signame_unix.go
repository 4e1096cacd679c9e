//go:build unix

package conformance

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// signalName is the signal's name ("SIGTERM"), or "" when unknown.
func signalName(s syscall.Signal) string { return unix.SignalName(s) }
