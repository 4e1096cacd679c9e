package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/internal/convention"
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

// execEnv is the environment exec: programs start from: base (serve's own
// environment) without the variables that give access to the master's API
// (convention.MasterEnv, both eras): function instances have no rights to
// it, and neither do the programs they run.
func execEnv(base []string) []string {
	drop := make(map[string]bool, len(convention.MasterEnv))
	for _, k := range convention.MasterEnv {
		drop[k] = true
	}
	env := make([]string, 0, len(base))
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	return env
}

// resolve turns a function's configuration into its implementation. Its
// errors say what is wrong with the handler, not which function it is.
func resolve(f FunctionConfig, env []string, maxOutput int64) (Func, error) {
	if fn, ok := Fixtures[f.Handler]; ok {
		return fn, nil
	}
	if err := checkHandler(f.Handler); err != nil {
		return nil, err
	}
	argv := strings.Fields(strings.TrimPrefix(f.Handler, ExecPrefix))
	prog, err := findProgram(argv[0], f.CodeDir)
	if err != nil {
		return nil, err
	}
	return execFunc(prog, argv[1:], f.CodeDir, env, maxOutput), nil
}

// findProgram finds an exec: handler's program: a name with a slash in
// codedir (or the working directory), else in PATH. It returns an absolute
// path to an executable file.
func findProgram(name, codeDir string) (string, error) {
	if !strings.ContainsRune(name, '/') {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("program %q: not found in PATH (write ./%s for a program in codedir)", name, name)
		}
		return p, nil
	}
	prog, where := name, ""
	if !filepath.IsAbs(prog) {
		prog = filepath.Join(codeDir, prog)
		where = " (relative to the working directory)"
		if codeDir != "" {
			where = " (in codedir " + codeDir + ")"
		}
	}
	shown := prog // as the configuration names it
	if abs, err := filepath.Abs(prog); err == nil {
		prog = abs
	}
	st, err := os.Stat(prog)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("program %s: %s does not exist%s", name, shown, where)
	case err != nil:
		return "", fmt.Errorf("program %s: %w", name, err)
	case st.IsDir() || st.Mode()&0o111 == 0:
		return "", fmt.Errorf("program %s: %s is not an executable file", name, prog)
	}
	return prog, nil
}

// CheckFunctions checks what New would check of the configured functions:
// handlers that exist, programs that are there and executable. Its error
// names the function; the caller adds the file.
func CheckFunctions(cfg *Config) error {
	_, err := resolveAll(cfg, nil)
	return err
}

// resolveAll resolves the configured functions, or, when there are none,
// offers the fixtures.
func resolveAll(cfg *Config, env []string) (map[string]Func, error) {
	funcs := map[string]Func{}
	if len(cfg.Functions) == 0 {
		for name, fn := range Fixtures {
			funcs[name] = fn
		}
	}
	for i, f := range cfg.Functions {
		fn, err := resolve(f, env, int64(cfg.Server.Message.Length.Max))
		if err != nil {
			return nil, fmt.Errorf("function %q (functions[%d].handler): %w", f.Name, i, err)
		}
		funcs[f.Name] = fn
	}
	return funcs, nil
}

// execFunc runs prog once per call: the payload on stdin, the call's fields
// in the environment, stdout is the result. No shell is involved. The
// program runs in its own process group; when the call ends — the program
// exited, its output passed the limit, or the caller gave up — everything
// left in that group is killed, and so are the orphans serve adopted (see
// reaper). env is the environment every call starts from.
func execFunc(prog string, args []string, dir string, env []string, maxOutput int64) Func {
	name := filepath.Base(prog)
	return func(ctx context.Context, c *Call) ([]byte, error) {
		cmd := exec.Command(prog, args...)
		cmd.Dir = dir
		cmd.Env = append(env[:len(env):len(env)],
			EnvMessageID+"="+strconv.FormatUint(c.ID, 10),
			EnvMessageQOS+"="+strconv.FormatUint(uint64(c.QOS), 10),
			EnvMessageTopic+"="+c.Topic,
			EnvMessageTimestamp+"="+strconv.FormatInt(c.Timestamp, 10),
			EnvFunctionName+"="+c.FunctionName,
			EnvFunctionInvoke+"="+c.FunctionInvokeID,
		)
		ownGroup(cmd)
		// Input and output go through pipes of our own rather than through
		// exec's copying, so that nothing a descendant holds open can hold
		// the call: see execIO.
		pipes, err := newExecIO(cmd, c.Payload, maxOutput)
		if err != nil {
			return nil, fmt.Errorf("exec %s: %w", name, err)
		}
		if err := reap.start(cmd); err != nil {
			pipes.abort()
			return nil, fmt.Errorf("exec %s: %w", name, err)
		}
		pid := cmd.Process.Pid
		pipes.started()
		exited := make(chan error, 1)
		reaped := false
		go func() {
			r, err := waitExit(cmd)
			reaped = r
			exited <- err
		}()
		var failure error
		select {
		case err = <-exited:
		case <-pipes.stdout.over:
			signalGroup(pid, syscall.SIGKILL)
			err = <-exited
			failure = status.Errorf(codes.ResourceExhausted,
				"exec %s: output exceeds the message limit (server.message.length.max, %d bytes): the program was killed", name, maxOutput)
		case <-ctx.Done():
			err = stopGroup(pid, exited)
			failure = ctx.Err()
		}
		// The program has exited; it is not reaped yet (on Linux), so its
		// group cannot have been recycled: kill what it left there, then
		// the orphans it left outside.
		signalGroup(pid, syscall.SIGKILL)
		reap.endOrphans()
		if !reaped {
			err = cmd.Wait()
		}
		reap.done(pid)
		pipes.finish()
		if failure != nil {
			return nil, failure
		}
		if pipes.stdout.overflow {
			return nil, status.Errorf(codes.ResourceExhausted,
				"exec %s: output exceeds the message limit (server.message.length.max, %d bytes)", name, maxOutput)
		}
		if err != nil {
			msg := strings.TrimSpace(pipes.stderr.String())
			if msg == "" {
				return nil, fmt.Errorf("exec %s: %w", name, err)
			}
			return nil, fmt.Errorf("exec %s: %w: %s", name, err, msg)
		}
		return pipes.stdout.Bytes(), nil
	}
}

// stopGroup ends a process group whose leader has not exited: SIGTERM,
// then SIGKILL after execKillGrace. It returns the leader's exit.
func stopGroup(pid int, exited <-chan error) error {
	signalGroup(pid, syscall.SIGTERM)
	t := time.NewTimer(execKillGrace)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
		signalGroup(pid, syscall.SIGKILL)
		return <-exited
	}
}

// execIO feeds an exec handler's standard input and collects its standard
// output and error through pipes. A descendant that keeps a pipe open after
// the program exited does not hold the call: once the program has exited
// and its group is killed, what the pipes hold is read without waiting for
// their end, after at most pipeGrace.
type execIO struct {
	stdout       *limitedBuffer
	stderr       *tailBuffer
	inW          *os.File
	inR          *os.File
	outR, errR   *os.File
	outW, errW   *os.File
	feeding      sync.WaitGroup
	copies       sync.WaitGroup
	closeReaders sync.Once
}

// pipeGrace is how long an exec handler's output pipes may stay open after
// the program exited before serve stops waiting for their end.
const pipeGrace = 100 * time.Millisecond

// newExecIO makes the pipes, hands their ends to cmd and starts copying.
func newExecIO(cmd *exec.Cmd, payload []byte, maxOutput int64) (*execIO, error) {
	o := &execIO{stdout: newLimitedBuffer(maxOutput), stderr: &tailBuffer{max: stderrTail}}
	files := make([]*os.File, 0, 6)
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	var err error
	if o.inR, o.inW, err = pipe(); err == nil {
		if o.outR, o.outW, err = pipe(); err == nil {
			o.errR, o.errW, err = pipe()
		}
	}
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, fmt.Errorf("pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.inR, o.outW, o.errW
	o.copies.Add(2)
	go func() { defer o.copies.Done(); _, _ = io.Copy(o.stdout, o.outR) }()
	go func() { defer o.copies.Done(); _, _ = io.Copy(o.stderr, o.errR) }()
	o.feeding.Add(1)
	go func() {
		defer o.feeding.Done()
		_, _ = o.inW.Write(payload)
		o.inW.Close()
	}()
	return o, nil
}

// started closes the parent's copies of the child's ends, so that the
// readers see the end when the program and its group are gone.
func (o *execIO) started() {
	o.inR.Close()
	o.outW.Close()
	o.errW.Close()
}

// abort undoes newExecIO when the program could not start.
func (o *execIO) abort() {
	o.started()
	o.finish()
}

// finish ends the copying, bounded by pipeGrace: it stops feeding stdin,
// waits for the output pipes' end, and past pipeGrace reads what they hold
// and closes them. After finish the buffers are safe to read.
func (o *execIO) finish() {
	o.inW.Close() // a blocked write of the payload returns
	o.feeding.Wait()
	finished := make(chan struct{})
	go func() { o.copies.Wait(); close(finished) }()
	t := time.NewTimer(pipeGrace)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		// Something still holds the pipes open. Wake the copiers, then
		// take what the pipes hold now: all the program wrote before it
		// exited.
		past := time.Unix(1, 0)
		_ = o.outR.SetReadDeadline(past)
		_ = o.errR.SetReadDeadline(past)
		<-finished
		drain(o.outR, o.stdout)
		drain(o.errR, o.stderr)
	}
	o.closeReaders.Do(func() {
		o.outR.Close()
		o.errR.Close()
	})
}

// drain copies to w what r holds now, without waiting for more.
func drain(r *os.File, w io.Writer) {
	if r.SetReadDeadline(time.Time{}) != nil {
		return
	}
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	_ = rc.Read(func(fd uintptr) bool {
		for {
			n, err := readFD(fd, buf)
			if n <= 0 || err != nil {
				return true
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return true
			}
		}
	})
}

// limitedBuffer keeps at most max bytes. Past the limit it keeps nothing
// more, closes over and fails the write, which ends the copying. It has no
// ReadFrom (an embedded bytes.Buffer would give it one), so that io.Copy
// cannot go around the limit.
type limitedBuffer struct {
	buf      bytes.Buffer
	max      int64
	overflow bool
	over     chan struct{}
}

func newLimitedBuffer(max int64) *limitedBuffer {
	return &limitedBuffer{max: max, over: make(chan struct{})}
}

// errOutputLimit ends the copying of an output past its limit.
var errOutputLimit = errors.New("output limit exceeded")

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.overflow {
		return 0, errOutputLimit
	}
	if room := b.max - int64(b.buf.Len()); int64(len(p)) > room {
		b.overflow = true
		close(b.over)
		return 0, errOutputLimit
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
