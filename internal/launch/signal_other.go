//go:build !unix

package launch

import (
	"strconv"
	"syscall"
)

func signalName(sig syscall.Signal) string { return "signal " + strconv.Itoa(int(sig)) }
