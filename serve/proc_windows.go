package serve

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// ownGroup: Windows has no process groups that serve could signal; an
// exec: program's own process is what is killed.
func ownGroup(*exec.Cmd) {}

// signalGroup kills the process pid (any signal).
func signalGroup(pid int, _ syscall.Signal) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// readFD: pipes are not pollable on Windows; nothing is read without
// waiting.
func readFD(uintptr, []byte) (int, error) { return 0, errors.New("not supported") }

// openFileLimit: Windows has no such limit.
func openFileLimit() (uint64, error) { return 0, errors.New("not supported") }
