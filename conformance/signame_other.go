//go:build !unix

package conformance

import "syscall"

// signalName is "" where signal names are not known.
func signalName(syscall.Signal) string { return "" }
