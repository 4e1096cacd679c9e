//go:build !linux

package launch

import (
	"context"
	"errors"
	"runtime"
	"syscall"
	"time"
)

// errUnsupported is returned where the launcher has no implementation.
var errUnsupported = errors.New("launching a runtime is not supported on " + runtime.GOOS + " (Linux only)")

type procSys struct{}

// Start is Linux-only; elsewhere it returns an error.
func Start(spec Spec) (*Process, error) { return nil, errUnsupported }

// EnableSubreaper is Linux-only; elsewhere it returns an error.
func EnableSubreaper() error { return errUnsupported }

// Tree is Linux-only; elsewhere it returns nil.
func Tree(root int) []Proc { return nil }

// All is Linux-only; elsewhere it returns nil.
func All() []Proc { return nil }

// Listeners is Linux-only; elsewhere it returns an error.
func Listeners(pids []int) ([]string, error) { return nil, errUnsupported }

// Marked is Linux-only; elsewhere it returns nil.
func Marked(kv string) []Proc { return nil }

// Alive is Linux-only; elsewhere it returns false.
func Alive(pid int, start uint64) bool { return false }

// Exists is Linux-only; elsewhere it returns false.
func Exists(pid int, start uint64) bool { return false }

// The methods below are never reached: Start returns no Process here.

func (p *Process) Signal(sig syscall.Signal) error    { return errUnsupported }
func (p *Process) Stopped() bool                      { return false }
func (p *Process) Terminate(grace time.Duration) bool { return false }
func (p *Process) Stop(grace time.Duration) bool      { return false }
func (p *Process) Kill()                              {}
func (p *Process) Wait(ctx context.Context) error     { return errUnsupported }
func (p *Process) Tracking() string                   { return errUnsupported.Error() }
func (p *Process) Survivors() []Proc                  { return nil }
func (p *Process) Cleanup() []Proc                    { return nil }
func (p *Process) Sample()                            {}
func (p *Process) GroupSignals() []GroupSignal        { return nil }
func (p *Process) Flush(timeout time.Duration)        {}

// CheckLimits is Linux-only; elsewhere it returns a *LimitError.
func CheckLimits() (string, error) {
	return "", &LimitError{Reason: "cgroups are Linux-only (" + runtime.GOOS + ")"}
}

func (p *Process) LimitStats() (CgroupStats, bool) { return CgroupStats{}, false }

// Init does nothing where the launcher is unsupported.
func Init() {}

// ReadCgroupStats is Linux-only; elsewhere nothing is read.
func ReadCgroupStats(lim Limits, v2, memory, pids string) CgroupStats {
	return CgroupStats{Limits: lim, MemoryPeak: -1, TasksPeak: -1}
}

// ReadCgroupValue is Linux-only; elsewhere it returns def.
func ReadCgroupValue(dir, file string, def int64) int64 { return def }
