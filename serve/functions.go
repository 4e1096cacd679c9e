package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Call is what a function sees of one Call: the request's fields.
type Call struct {
	ID               uint64
	QOS              uint32
	Topic            string
	Payload          []byte
	Timestamp        int64
	FunctionName     string
	FunctionInvokeID string
}

// Func is a function's implementation. It returns the response payload; an
// error becomes a non-OK status (UNKNOWN unless it carries a gRPC status).
// ctx is cancelled when the caller gives up or its deadline passes.
type Func func(ctx context.Context, c *Call) ([]byte, error)

// Fixtures are the conformance fixtures, by handler name. With no
// configured functions, serve offers each under its own name.
var Fixtures = map[string]Func{
	"echo":    echo,
	"context": contextFixture,
	"none":    none,
	"fail":    fail,
	"sleep":   sleep,
}

// FixtureNames lists the fixture names in order.
func FixtureNames() []string {
	names := make([]string, 0, len(Fixtures))
	for n := range Fixtures {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func echo(_ context.Context, c *Call) ([]byte, error) { return c.Payload, nil }

func none(context.Context, *Call) ([]byte, error) { return nil, nil }

func fail(context.Context, *Call) ([]byte, error) {
	return nil, errors.New("conformance failure: the fail fixture always fails")
}

// contextFixture returns the call's metadata as the reference runtimes hand
// it to functions.
func contextFixture(_ context.Context, c *Call) ([]byte, error) {
	return json.Marshal(struct {
		QOS      uint32 `json:"messageQOS"`
		Topic    string `json:"messageTopic"`
		Function string `json:"functionName"`
		InvokeID string `json:"functionInvokeID"`
	}{c.QOS, c.Topic, c.FunctionName, c.FunctionInvokeID})
}

// sleep waits {"ms": N} milliseconds, or until the call is cancelled.
func sleep(ctx context.Context, c *Call) ([]byte, error) {
	var arg struct {
		MS *int64 `json:"ms"`
	}
	if err := json.Unmarshal(c.Payload, &arg); err != nil || arg.MS == nil || *arg.MS < 0 {
		return nil, errors.New(`sleep: the payload must be {"ms": N} with N >= 0`)
	}
	t := time.NewTimer(time.Duration(*arg.MS) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return c.Payload, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ExecPrefix marks a handler that runs a program once per call.
const ExecPrefix = "exec:"

// Exec environment variables: the call's fields, for an exec handler.
const (
	EnvMessageID        = "OE_RT_MESSAGE_ID"
	EnvMessageQOS       = "OE_RT_MESSAGE_QOS"
	EnvMessageTopic     = "OE_RT_MESSAGE_TOPIC"
	EnvMessageTimestamp = "OE_RT_MESSAGE_TIMESTAMP"
	EnvFunctionName     = "OE_RT_FUNCTION_NAME"
	EnvFunctionInvoke   = "OE_RT_FUNCTION_INVOKE_ID"
)

// execKillGrace is how long an exec handler's process group may take to
// exit after SIGTERM when its call is cancelled, before SIGKILL.
const execKillGrace = 2 * time.Second

// stderrTail is how much of an exec handler's standard error an error
// carries.
const stderrTail = 2048

// checkHandler reports whether h names a fixture or a program (exec:).
func checkHandler(h string) error {
	if _, ok := Fixtures[h]; ok {
		return nil
	}
	if !strings.HasPrefix(h, ExecPrefix) {
		return fmt.Errorf("unknown handler %q: want one of %s, or exec:PROGRAM", h, strings.Join(FixtureNames(), ", "))
	}
	if len(strings.Fields(strings.TrimPrefix(h, ExecPrefix))) == 0 {
		return errors.New("exec: handler names no program")
	}
	return nil
}

// resolve turns a function's configuration into its implementation.
func resolve(f FunctionConfig, maxOutput int64) (Func, error) {
	if fn, ok := Fixtures[f.Handler]; ok {
		return fn, nil
	}
	if err := checkHandler(f.Handler); err != nil {
		return nil, fmt.Errorf("function %q: %w", f.Name, err)
	}
	argv := strings.Fields(strings.TrimPrefix(f.Handler, ExecPrefix))
	prog := argv[0]
	if strings.ContainsRune(prog, '/') {
		if !filepath.IsAbs(prog) {
			prog = filepath.Join(f.CodeDir, prog)
		}
		if abs, err := filepath.Abs(prog); err == nil {
			prog = abs
		}
		st, err := os.Stat(prog)
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", f.Name, err)
		}
		if st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("function %q: %s is not an executable file", f.Name, prog)
		}
	} else if p, err := exec.LookPath(prog); err != nil {
		return nil, fmt.Errorf("function %q: %w", f.Name, err)
	} else {
		prog = p
	}
	return execFunc(prog, argv[1:], f.CodeDir, maxOutput), nil
}

// execFunc runs prog once per call: the payload on stdin, the call's fields
// in the environment, stdout is the result. The program runs in its own
// process group, which is killed when the call is cancelled. No shell is
// involved.
func execFunc(prog string, args []string, dir string, maxOutput int64) Func {
	return func(ctx context.Context, c *Call) ([]byte, error) {
		cmd := exec.Command(prog, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			EnvMessageID+"="+strconv.FormatUint(c.ID, 10),
			EnvMessageQOS+"="+strconv.FormatUint(uint64(c.QOS), 10),
			EnvMessageTopic+"="+c.Topic,
			EnvMessageTimestamp+"="+strconv.FormatInt(c.Timestamp, 10),
			EnvFunctionName+"="+c.FunctionName,
			EnvFunctionInvoke+"="+c.FunctionInvokeID,
		)
		cmd.Stdin = bytes.NewReader(c.Payload)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// The payload is copied in by exec; a descendant that holds stdin
		// must not hold Wait for longer than this.
		cmd.WaitDelay = execKillGrace
		// Output comes through pipes of our own rather than through exec's
		// copying, so that Wait returns as soon as the program exits even
		// when something it left in the background holds the pipes; that is
		// killed with the group below, which ends the output.
		out, err := startOutput(cmd, maxOutput)
		if err != nil {
			return nil, fmt.Errorf("exec %s: %w", prog, err)
		}
		if err := cmd.Start(); err != nil {
			out.close()
			return nil, fmt.Errorf("exec %s: %w", prog, err)
		}
		out.started()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-ctx.Done():
			killGroup(cmd.Process.Pid, done)
			out.close()
			return nil, ctx.Err()
		}
		// The leader is gone; members of its group that it left behind
		// must not outlive the call either.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		out.close()
		if errors.Is(err, exec.ErrWaitDelay) {
			err = nil // the program succeeded; only stdin was left unread
		}
		if out.stdout.overflow {
			return nil, fmt.Errorf("exec %s: output exceeds %d bytes", filepath.Base(prog), maxOutput)
		}
		if err != nil {
			msg := strings.TrimSpace(out.stderr.String())
			if msg == "" {
				return nil, fmt.Errorf("exec %s: %w", filepath.Base(prog), err)
			}
			return nil, fmt.Errorf("exec %s: %w: %s", filepath.Base(prog), err, msg)
		}
		return out.stdout.Bytes(), nil
	}
}

// execOutput collects an exec handler's standard output and error through
// pipes.
type execOutput struct {
	stdout       *limitedBuffer
	stderr       *tailBuffer
	outR, errR   *os.File
	outW, errW   *os.File
	copies       sync.WaitGroup
	closeReaders sync.Once
}

// startOutput makes the pipes, hands their write ends to cmd and starts
// copying from the read ends.
func startOutput(cmd *exec.Cmd, maxOutput int64) (*execOutput, error) {
	o := &execOutput{stdout: &limitedBuffer{max: maxOutput}, stderr: &tailBuffer{max: stderrTail}}
	var err error
	if o.outR, o.outW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	if o.errR, o.errW, err = os.Pipe(); err != nil {
		o.outR.Close()
		o.outW.Close()
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = o.outW, o.errW
	o.copies.Add(2)
	go func() { defer o.copies.Done(); _, _ = io.Copy(o.stdout, o.outR) }()
	go func() { defer o.copies.Done(); _, _ = io.Copy(o.stderr, o.errR) }()
	return o, nil
}

// started closes the parent's copies of the write ends, which the child
// now holds, so that the readers see the end when the child's group is gone.
func (o *execOutput) started() {
	o.outW.Close()
	o.errW.Close()
}

// close waits for the copying to end, at most execKillGrace (a descendant
// that left the process group may still hold the pipes), then closes the
// read ends. After close the buffers are safe to read.
func (o *execOutput) close() {
	o.outW.Close()
	o.errW.Close()
	finished := make(chan struct{})
	go func() { o.copies.Wait(); close(finished) }()
	t := time.NewTimer(execKillGrace)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
	}
	o.closeReaders.Do(func() {
		o.outR.Close()
		o.errR.Close()
	})
	<-finished
}

// killGroup ends a process group: SIGTERM, then SIGKILL after a grace
// period, and waits for the leader (done reports its Wait).
func killGroup(pid int, done <-chan error) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(execKillGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// limitedBuffer keeps at most max bytes and remembers whether more came.
// It has no ReadFrom (an embedded bytes.Buffer would give it one), so that
// io.Copy cannot go around the limit.
type limitedBuffer struct {
	buf      bytes.Buffer
	max      int64
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - int64(b.buf.Len()); int64(len(p)) > room {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Bytes returns what was kept.
func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return string(b.buf) }
