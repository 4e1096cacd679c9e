package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// launchedRuntime adapts a launch.Process to bench.Runtime.
type launchedRuntime struct {
	proc  *launch.Process
	addr  string
	grace time.Duration
}

func (r *launchedRuntime) Address() string         { return r.addr }
func (r *launchedRuntime) Exited() <-chan struct{} { return r.proc.Done() }

func (r *launchedRuntime) ExitErr() error {
	e, ok := r.proc.ExitStatus()
	if !ok || (e.Code == 0 && e.Signal == 0) {
		return nil
	}
	tail := strings.TrimSpace(r.proc.Stderr())
	if len(tail) > 2048 {
		tail = tail[len(tail)-2048:]
	}
	if tail == "" {
		return fmt.Errorf("the runtime ended (%s)", e)
	}
	return fmt.Errorf("the runtime ended (%s); its stderr ends with:\n%s", e, tail)
}

// Sample samples the runtime's resources now (bench.Sampler).
func (r *launchedRuntime) Sample() {
	if !r.proc.Exited() {
		r.proc.Sample()
	}
}

func (r *launchedRuntime) Usage() bench.Usage {
	u := r.proc.Usage()
	return bench.Usage{PeakRSS: u.PeakRSS, PeakThreads: u.PeakThreads, Samples: u.Samples}
}

func (r *launchedRuntime) Stop(context.Context) error {
	exitedBefore := r.proc.Exited()
	r.proc.Stop(r.grace)
	if exitedBefore {
		return r.ExitErr()
	}
	return nil
}

// starter returns how to start RUNTIME: as conform does, on a free port of
// 127.0.0.1 given in the profile's environment, in its own process group.
// The options were checked (profile, grace).
func (l *launchFlags) starter(path string, args []string, profile string) bench.Starter {
	grace := l.grace
	_ = launch.EnableSubreaper()
	return func(ctx context.Context) (bench.Runtime, error) {
		addr, err := launch.FreePort()
		if err != nil {
			return nil, err
		}
		proc, err := launch.Start(launch.Spec{
			Path: path, Args: args, Dir: l.dir,
			Env: convention.RuntimeEnv(os.Environ(), convention.Profile(profile), addr, "oe-rt-bench", nil),
		})
		if err != nil {
			return nil, err
		}
		return &launchedRuntime{proc: proc, addr: addr, grace: grace}, nil
	}
}
