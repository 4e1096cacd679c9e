//go:build unix

package launch

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// signalName is "SIGTERM" for SIGTERM, "signal 42" for a number without a
// name.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}
