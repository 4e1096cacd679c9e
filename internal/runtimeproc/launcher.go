package runtimeproc

import (
	"context"
	"syscall"
	"time"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// Process is one started runtime instance as oe-rt's commands see it: its
// life, its output and what it uses. A native instance is a
// *launch.Process (Native); a container mode implements it for a
// container, its PID being the host's PID of the container's first
// process.
type Process interface {
	// PID is the instance's process (its first process, in a container),
	// as this host numbers it.
	PID() int
	// StartTime is when it was started (exec, or the container's start).
	StartTime() time.Time
	// Done is closed when the process has ended.
	Done() <-chan struct{}
	Exited() bool
	ExitStatus() (launch.Exit, bool)
	// Signal sends sig to the process only, as the master does.
	Signal(sig syscall.Signal) error
	// Stopped says whether it is stopped (SIGSTOP or the like).
	Stopped() bool
	// Terminate sends SIGTERM, then SIGKILL after grace, and waits for
	// the end; it reports whether the process ended within the grace.
	Terminate(grace time.Duration) bool
	Kill()
	Wait(ctx context.Context) error
	// Survivors are the processes of the instance alive after it ended;
	// Cleanup ends them (and everything the instance holds) and says
	// which it had to kill.
	Survivors() []launch.Proc
	Cleanup() []launch.Proc
	// Sample measures its process tree now; Usage is the peak so far.
	Sample()
	Usage() launch.Usage
	// Lines is what it wrote between from and to; Stdout and Stderr the
	// end of each stream; OutputBytes how much it wrote to each.
	Lines(from, to time.Time) []launch.Line
	Stdout() string
	Stderr() string
	OutputBytes() (stdout, stderr int64)
	// Flush waits, at most timeout, until what it wrote so far is read.
	Flush(timeout time.Duration)
	// GroupSignals are the signals that reached the master's stand-in in
	// its process group (launch.Spec.MasterGroup).
	GroupSignals() []launch.GroupSignal
	// LimitStats are the kernel's counters of its enforced limits.
	LimitStats() (launch.CgroupStats, bool)
}

// Instance says what a Launcher starts: one instance of a runtime, as the
// master starts it.
type Instance struct {
	// Name is the instance's name: <service>.<function>.<n>.
	Name string
	// Listen is the address the instance is told to listen on (in its
	// address variables), from the launcher's ListenAddress.
	Listen string
	// Spec is the program, its arguments, its environment (whole), its
	// working directory and limits. A launcher uses what has a meaning for
	// it and says in its documentation what it ignores.
	Spec launch.Spec
	// Service is the service the instance belongs to (a container's
	// "service" label, as the master's).
	Service string
	// Mounts are what a container launcher binds into the container, as
	// the master's docker engine binds the service's volumes and its API
	// socket; a native launcher has none (the working directory,
	// Spec.Dir, is laid out instead).
	Mounts []Mount
}

// Mount binds the host's path Source at Target in a container.
type Mount struct {
	Source, Target string
	ReadOnly       bool
}

// ContainerLauncher is a Launcher that starts each instance in a container
// made from one image: the instance is described by what the master's
// docker engine gives it (Instance.Mounts, an environment of the master's
// variables only, Spec.Args as the container's command), not by a
// working directory of this host.
type ContainerLauncher interface {
	Launcher
	// Image describes the image instances are made from.
	Image() Image
}

// Image describes a container image.
type Image struct {
	Name       string   // as given
	ID         string   // sha256:…
	Size       int64    // bytes
	Entrypoint []string // the image's ENTRYPOINT
	Cmd        []string // its CMD
	User       string   // its USER ("": root)
	WorkingDir string   // its WORKDIR ("": /)
	StopSignal string   // its STOPSIGNAL ("": SIGTERM)
}

// Created is implemented by a Process that was created before it was
// started (a container): when.
type Created interface {
	Created() time.Time
}

// Launcher starts runtime instances: the one seam through which anything
// of oe-rt starts a runtime (conform's instances, bench's runtime). Native
// starts processes; container mode starts containers.
type Launcher interface {
	// ListenAddress is an address for the next instance to listen on: a
	// free port of 127.0.0.1 natively.
	ListenAddress() (string, error)
	// Launch starts an instance and returns it started, not yet ready,
	// with the address to reach it at.
	Launch(in Instance) (p Process, dial string, err error)
}

// Native is the launcher of processes on this host, through launch.Start:
// each instance in a process group of its own (or the master stand-in's:
// Spec.MasterGroup) and a tracking cgroup, its output read all the time,
// its descendants ended with it.
type Native struct{}

// ListenAddress is a free port of 127.0.0.1.
func (Native) ListenAddress() (string, error) { return launch.FreePort() }

// Launch starts in.Spec through launch.Start; the address to reach it at
// is in.Listen.
func (Native) Launch(in Instance) (Process, string, error) {
	p, err := launch.Start(in.Spec)
	if err != nil {
		return nil, "", err
	}
	return nativeProcess{p}, in.Listen, nil
}

// nativeProcess is a *launch.Process seen as a Process.
type nativeProcess struct{ *launch.Process }

func (p nativeProcess) PID() int             { return p.Pid }
func (p nativeProcess) StartTime() time.Time { return p.Started }
