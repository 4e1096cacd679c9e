package runtimeproc

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// DefaultGrace is the grace period of Stop when Options.Grace is 0, the
// master's own.
const DefaultGrace = 10 * time.Second

// Options says how to start a runtime.
type Options struct {
	// Command is the program and its arguments. The program is found as
	// Resolve finds it, with Dir.
	Command []string
	// Dir is the runtime's working directory ("" = the current one).
	Dir string
	// Profile chooses the variables the runtime is given its address and
	// name in, as the master of the profile's era gives them
	// (convention.RuntimeEnv); "" means convention.ProfileOpenEdge.
	Profile convention.Profile
	// Name is the instance's and the service's name in those variables.
	Name string
	// Env adds variables (K=V) to the environment, after the profile's.
	Env []string
	// Grace is how long Stop lets the runtime take to exit after SIGTERM
	// before SIGKILL; 0 means DefaultGrace.
	Grace time.Duration
	// Launcher starts it; nil means Native. With a ContainerLauncher,
	// Command[0] names the image and Command[1:] are the container's
	// command; the environment is the profile's variables and Env only.
	Launcher Launcher
}

// Runtime is a runtime that Start started. Call Stop once it is no longer
// needed, in every case: until then the launcher watches it.
type Runtime struct {
	// Proc is its process.
	Proc Process
	// Addr is the host:port to reach it at: the free port of 127.0.0.1
	// it was told to listen on, natively; its container's address in
	// container mode.
	Addr  string
	grace time.Duration
}

// Start starts a runtime as oe-rt's commands do: the program found by
// Resolve, on a free port of 127.0.0.1 given in the profile's variables,
// in an environment that is this process's without any master's API,
// token, address or name variables (convention.RuntimeEnv), through
// launch.Start (its own process group and tracking cgroup, its output
// read all the time). It returns once the process is started: WaitReady
// waits for it to accept a connection.
//
// A program that cannot be started is an error that matches
// launch.ErrStart and names the cause: not found (with a Dir: in neither
// place, a *NotFoundError that names both), not executable, a bad #!
// line, a missing Dir, … (a *launch.StartError).
func Start(o Options) (*Runtime, error) {
	if len(o.Command) == 0 || o.Command[0] == "" {
		return nil, &launch.StartError{Reason: "no program given"}
	}
	profile := o.Profile
	if profile == "" {
		profile = convention.ProfileOpenEdge
	}
	l := o.Launcher
	if l == nil {
		l = Native{}
	}
	_, contained := l.(ContainerLauncher)
	path, base := o.Command[0], os.Environ()
	if contained {
		base = nil // the image says what runs; the master's variables only
	} else {
		var err error
		if path, err = Resolve(o.Command[0], o.Dir); err != nil {
			return nil, err
		}
	}
	addr, err := l.ListenAddress()
	if err != nil {
		return nil, err
	}
	proc, addr, err := l.Launch(Instance{Name: o.Name, Listen: addr, Service: o.Name, Spec: launch.Spec{
		Path: path,
		Args: o.Command[1:],
		Dir:  o.Dir,
		Env:  convention.RuntimeEnv(base, profile, addr, o.Name, o.Env),
	}})
	if err != nil {
		return nil, err
	}
	grace := o.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Runtime{Proc: proc, Addr: addr, grace: grace}, nil
}

// maxTail is how much of the runtime's stderr ExitErr quotes.
const maxTail = 2048

// ExitErr says how the runtime ended, with the end of what it wrote to
// stderr, as an error; nil while it runs, and when it exited with status
// 0.
func (r *Runtime) ExitErr() error {
	e, ok := r.Proc.ExitStatus()
	if !ok || (e.Code == 0 && e.Signal == 0) {
		return nil
	}
	tail := strings.TrimSpace(r.Proc.Stderr())
	if len(tail) > maxTail {
		tail = tail[len(tail)-maxTail:]
	}
	if tail == "" {
		return fmt.Errorf("the runtime ended (%s)", e)
	}
	return fmt.Errorf("the runtime ended (%s); its stderr ends with:\n%s", e, tail)
}

// Stop ends the runtime as conform ends an instance: SIGTERM to its
// process, SIGKILL after the grace period (at once when it is stopped,
// SIGSTOP, which SIGTERM cannot end), then every process of its launch
// (launch's Terminate and Cleanup). It returns ExitErr when the runtime
// had ended before it was asked to, nil otherwise. It may be called more
// than once.
func (r *Runtime) Stop() error {
	exitedBefore := r.Proc.Exited()
	if r.Proc.Stopped() {
		r.Proc.Kill()
	} else {
		r.Proc.Terminate(r.grace)
		r.Proc.Cleanup()
	}
	if exitedBefore {
		return r.ExitErr()
	}
	return nil
}
