package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// instance is one started runtime.
type instance struct {
	proc     *launch.Process
	addr     string
	conn     *grpc.ClientConn
	cli      *client.Client
	ready    time.Duration // from exec to the first answered call
	readyErr error
}

// readyProbe is the FunctionName of the readiness calls: any answer but
// UNAVAILABLE means the runtime is serving.
const readyProbe = "oe-rt.conform.ready-probe"

// startInstance starts the runtime on a free port and waits until it
// answers a call, the start timeout passes, or it exits. The instance is
// returned even when it did not become ready (readyErr says why), so that
// the caller can stop it and report.
func (r *runner) startInstance(ctx context.Context, name string) (*instance, error) {
	addr, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	spec := launch.Spec{
		Path: r.cfg.Command[0],
		Args: r.cfg.Command[1:],
		Dir:  r.cfg.Dir,
		Env:  r.cfg.environment(os.Environ(), addr, name),
	}
	if r.cgroup != nil {
		spec.CgroupFD = r.cgroup.fd
	}
	proc, err := launch.Start(spec)
	if err != nil {
		return nil, err
	}
	inst := &instance{proc: proc, addr: addr}
	r.track(inst)
	conn, err := client.Dial(addr, client.Options{DialOptions: []grpc.DialOption{
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.2, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}),
	}})
	if err != nil {
		return inst, err
	}
	inst.conn = conn
	inst.cli = client.New(conn, r.cfg.schema())
	inst.readyErr = inst.waitReady(ctx, r.cfg.StartTimeout)
	return inst, nil
}

func (inst *instance) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := inst.proc.Started.Add(timeout)
	for {
		if inst.proc.Exited() {
			e, _ := inst.proc.ExitStatus()
			return fmt.Errorf("the runtime exited before it served a call (%s)", e)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s within %s", inst.addr, timeout)
		}
		cctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		_, err := inst.cli.Call(cctx, &client.Message{FunctionName: readyProbe})
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			inst.ready = time.Since(inst.proc.Started)
			return nil
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-inst.proc.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (inst *instance) stop(grace time.Duration) {
	if inst.conn != nil {
		inst.conn.Close()
	}
	inst.proc.Stop(grace)
}

// stderrTail returns the last lines of the runtime's standard error.
func (inst *instance) stderrTail(lines int) string {
	s := strings.TrimRight(inst.proc.Stderr(), "\n")
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

var errNotStarted = errors.New("the runtime did not start")
