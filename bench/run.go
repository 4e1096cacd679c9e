package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

// errRuntimeExited is the cause of the run's cancellation when the runtime
// that bench started exits on its own.
var errRuntimeExited = errors.New("runtime exited")

// Run loads a runtime as cfg says and reports what it measured. When the
// run is interrupted (ctx is cancelled) or the runtime that Run started
// exits, Run returns the report of the calls completed so far together with
// an error. When Run returns, every process it started has ended.
//
// Errors found before anything is started or sent are *ConfigError values
// (a configuration that cannot make a run, such as a payload over the send
// limit); a runtime that Config.Launch could not start is a *StartError.
// Anything else is about the runtime: it could not be reached, was not
// ready in time, or exited.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Schema == nil {
		cfg.Schema = client.ForProfile(cfg.Profile)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 500 * time.Millisecond
	}
	if len(cfg.Payloads) == 0 {
		cfg.Payloads = []Payload{{}}
	}
	r := &runner{cfg: cfg, method: cfg.Schema.FullMethod()}
	r.opts = []grpc.CallOption{grpc.ForceCodecV2(codec{})}
	return r.run(ctx)
}

type runner struct {
	cfg       Config
	method    string
	opts      []grpc.CallOption
	rt        *runtimeproc.Runtime // the runtime Run started, if it did
	conns     []*grpc.ClientConn
	workers   []*worker
	recorders []*recorder
}

func (r *runner) run(ctx context.Context) (rep *Report, err error) {
	rep = r.newReport()
	reqs, err := r.encodeAll()
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	started := time.Now()
	if l := r.cfg.Launch; l != nil {
		rtr, err := r.launch(runCtx, cancel, l)
		if err != nil {
			return nil, err
		}
		rep.Target, rep.Runtime = r.rt.Addr, rtr
		defer func() {
			// rep may be nil by now (an early error return): fill rtr.
			if serr := r.stopRuntime(rtr); serr != nil && err == nil {
				err = serr
			}
		}()
	}

	if err := r.dial(rep.Target); err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range r.conns {
			c.Close()
		}
	}()
	if err := r.waitReady(runCtx, rep.Target); err != nil {
		return nil, r.explain(runCtx, "before it was ready", err)
	}
	if rep.Runtime != nil {
		r.firstCall(runCtx, reqs[0])
		rep.Runtime.Startup = time.Since(started)
		r.sample()
	}
	r.makeWorkers(rep.Concurrency)
	r.phases(runCtx, rep, reqs)
	if runCtx.Err() != nil {
		return rep, r.explain(runCtx, "during the run", runCtx.Err())
	}
	return rep, nil
}

// newReport is the report of the run before it starts.
func (r *runner) newReport() *Report {
	cfg := r.cfg
	// A caller beyond the number of calls would never call.
	callers := cfg.Concurrency
	if cfg.Total > 0 {
		callers = min(callers, cfg.Total)
	}
	return &Report{
		Target:      cfg.Address,
		Method:      r.method,
		Function:    cfg.Function,
		Concurrency: callers,
		Connections: cfg.Connections,
		TargetRPS:   cfg.RPS,
		Total:       cfg.Total,
		Duration:    cfg.Duration,
	}
}

// encodeAll encodes every request before anything starts: a bad schema
// or payload is found without starting a runtime. A request over the
// connection's send limit would fail in bench itself, never reaching the
// runtime: such a run measures nothing, so it is refused.
func (r *runner) encodeAll() ([]*request, error) {
	cfg := r.cfg
	reqs := make([]*request, len(cfg.Payloads))
	limit := client.SendLimit(cfg.Dial.MaxMsgSize)
	for i, p := range cfg.Payloads {
		b, err := r.encode(p.Data)
		if err != nil {
			return nil, &ConfigError{Err: err}
		}
		if len(b) > limit {
			return nil, &ConfigError{Err: fmt.Errorf("payload %s: a request of %d bytes is over bench's send limit of %d bytes (1.5 times the message size limit of %d bytes, plus 1 KiB): raise the message size limit (--max-msg-size)",
				nameOr(p.Name, "(empty)"), len(b), limit, msgSize(cfg.Dial.MaxMsgSize))}
		}
		reqs[i] = newRequest(b)
	}
	return reqs, nil
}

// launch starts the runtime of Config.Launch (r.rt); the run is cancelled
// with errRuntimeExited if it exits before the run ends.
func (r *runner) launch(runCtx context.Context, cancel context.CancelCauseFunc, l *Launch) (*RuntimeReport, error) {
	rt, err := runtimeproc.Start(runtimeproc.Options{Command: l.Command, Dir: l.Dir, Profile: r.cfg.Profile,
		Name: "oe-rt-bench", Env: l.Env, Grace: l.Grace, Launcher: l.Launcher})
	if err != nil {
		return nil, &StartError{Err: err}
	}
	r.rt = rt
	go func() {
		select {
		case <-rt.Proc.Done():
			cancel(errRuntimeExited)
		case <-runCtx.Done():
		}
	}()
	return &RuntimeReport{}, nil
}

// stopRuntime stops the runtime launch started and fills rtr with its
// usage.
func (r *runner) stopRuntime(rtr *RuntimeReport) error {
	serr := r.rt.Stop()
	rtr.Usage = r.rt.Proc.Usage()
	if serr != nil {
		return fmt.Errorf("stop runtime: %w", serr)
	}
	return nil
}

// makeWorkers makes the callers and the recorders they share.
func (r *runner) makeWorkers(callers int) {
	r.recorders = make([]*recorder, min(callers, maxRecorders))
	for i := range r.recorders {
		r.recorders[i] = &recorder{hist: newHistogram()}
	}
	r.workers = make([]*worker, callers)
	for i := range r.workers {
		r.workers[i] = &worker{rec: r.recorders[i%len(r.recorders)]}
	}
}

// phases runs a warm-up (Config.Warmup) and a measured phase per payload,
// until the last or until the run is cancelled, and puts their results in
// rep: one Result, and with more than one payload the Sweep.
func (r *runner) phases(runCtx context.Context, rep *Report, reqs []*request) {
	cfg := r.cfg
	all := newPhaseResult()
	for i, p := range cfg.Payloads {
		if cfg.Warmup > 0 {
			r.phase(runCtx, p, reqs[i], 0, cfg.Warmup, false)
		}
		var pr *phaseResult
		if runCtx.Err() == nil {
			pr = r.phase(runCtx, p, reqs[i], cfg.Total, cfg.Duration, true)
		} else {
			pr = newPhaseResult()
		}
		res := pr.result(p)
		if len(cfg.Payloads) > 1 {
			rep.Sweep = append(rep.Sweep, res)
		}
		all.add(pr)
		r.sample() // the memory the phase moved, before the next
		if runCtx.Err() != nil {
			break
		}
	}
	if len(cfg.Payloads) == 1 {
		rep.Result = all.result(cfg.Payloads[0])
		return
	}
	// A sweep: the top level names every payload and has no one size.
	names := make([]string, len(cfg.Payloads))
	for i, p := range cfg.Payloads {
		names[i] = p.Name
	}
	rep.Result = all.result(Payload{Name: strings.Join(names, ",")})
}

// explain turns the cancellation of the run, or a runtime that exited
// before it was ready, into the reason for it.
func (r *runner) explain(runCtx context.Context, when string, err error) error {
	var nr *runtimeproc.NotReadyError
	if errors.Is(context.Cause(runCtx), errRuntimeExited) || errors.As(err, &nr) && nr.Exit != nil {
		if xerr := r.rt.ExitErr(); xerr != nil {
			return fmt.Errorf("runtime exited %s: %w", when, xerr)
		}
		return fmt.Errorf("runtime exited %s (exit status 0)", when)
	}
	if runCtx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(runCtx))
	}
	return err
}

// msgSize is the message size limit of a connection dialled with
// client.Options.MaxMsgSize = n.
func msgSize(n int) int {
	if n <= 0 {
		return convention.DefaultMaxMessageSize
	}
	return n
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *runner) encode(payload []byte) ([]byte, error) {
	m := &client.Message{
		ID:               1,
		Topic:            "oe-rt/bench",
		Payload:          payload,
		FunctionName:     r.cfg.Function,
		FunctionInvokeID: "oe-rt-bench",
	}
	if r.cfg.Schema.HasTimestamp() {
		m.Timestamp = time.Now().Unix()
	}
	b, err := proto.Marshal(r.cfg.Schema.Encode(m))
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// sample takes a sample of a started runtime's resources now: at the
// run's boundaries, where its memory moved, beside the launcher's own
// timer.
func (r *runner) sample() {
	if r.rt != nil && !r.rt.Proc.Exited() {
		r.rt.Proc.Sample()
	}
}
