package conformance

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerPid returns the pid of the process at the other end of a unix
// connection (SO_PEERCRED), or 0.
func peerPid(c net.Conn) int {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil || cred.Pid <= 0 {
		return 0
	}
	return int(cred.Pid)
}
