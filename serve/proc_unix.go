//go:build unix

package serve

import (
	"os/exec"
	"syscall"
)

// ownGroup makes cmd's process lead a process group of its own.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup signals the process group that pid leads.
func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}

// readFD reads from a non-blocking descriptor.
func readFD(fd uintptr, buf []byte) (int, error) {
	return syscall.Read(int(fd), buf)
}

// openFileLimit is the process's soft limit on open descriptors.
func openFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return r.Cur, nil
}
