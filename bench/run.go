package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
)

// The latency histograms count microseconds from 1µs to one hour with three
// significant digits: a histogram takes about 190 KiB whatever the number
// of calls. Longer latencies are counted as one hour (the exact maximum is
// kept apart). Each caller records into a histogram of its own up to
// maxRecorders callers; beyond that callers share them (caller i uses
// histogram i mod maxRecorders, under a mutex that is then rarely
// contended), so that memory stays bounded (about 12 MiB) however many
// callers there are.
const (
	histLowest   = 1
	histHighest  = int64(time.Hour / time.Microsecond)
	histDigits   = 3
	maxRecorders = 64
)

// stopTimeout bounds the wait for a started runtime to stop; the launcher's
// own grace period (SIGTERM, then SIGKILL) is shorter.
const stopTimeout = 60 * time.Second

// errRuntimeExited is the cause of the run's cancellation when the runtime
// that bench started exits on its own.
var errRuntimeExited = errors.New("runtime exited")

// Run loads a runtime as cfg says and reports what it measured. When the
// run is interrupted (ctx is cancelled) or the runtime that Run started
// exits, Run returns the report of the calls completed so far together with
// an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Schema == nil {
		cfg.Schema = client.OpenEdge()
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
	rt        Runtime
	conns     []*grpc.ClientConn
	workers   []*worker
	recorders []*recorder
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

func (r *runner) run(ctx context.Context) (rep *Report, err error) {
	cfg := r.cfg
	rep = &Report{
		Target:      cfg.Address,
		Method:      r.method,
		Function:    cfg.Function,
		Concurrency: cfg.Concurrency,
		Connections: cfg.Connections,
		TargetRPS:   cfg.RPS,
		Total:       cfg.Total,
		Duration:    cfg.Duration,
	}
	// Encode every request before anything starts: a bad schema or payload
	// is found without starting a runtime.
	reqs := make([]*request, len(cfg.Payloads))
	for i, p := range cfg.Payloads {
		b, err := r.encode(p.Data)
		if err != nil {
			return nil, err
		}
		reqs[i] = newRequest(b)
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	started := time.Now()
	if cfg.Start != nil {
		rt, err := cfg.Start(ctx)
		if err != nil {
			return nil, fmt.Errorf("start runtime: %w", err)
		}
		r.rt = rt
		rep.Target = rt.Address()
		rtr := &RuntimeReport{}
		rep.Runtime = rtr
		defer func() {
			// rep may be nil by now (an early error return): fill rtr.
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer scancel()
			serr := rt.Stop(sctx)
			rtr.Usage = rt.Usage()
			if serr != nil && err == nil {
				err = fmt.Errorf("stop runtime: %w", serr)
			}
		}()
		go func() {
			select {
			case <-rt.Exited():
				cancel(errRuntimeExited)
			case <-runCtx.Done():
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
	}

	r.recorders = make([]*recorder, min(cfg.Concurrency, maxRecorders))
	for i := range r.recorders {
		r.recorders[i] = &recorder{hist: newHistogram()}
	}
	r.workers = make([]*worker, cfg.Concurrency)
	for i := range r.workers {
		r.workers[i] = &worker{rec: r.recorders[i%len(r.recorders)]}
	}
	total := newHistogram()
	var all phaseResult
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
		total.Merge(pr.hist)
		all.add(pr)
		if runCtx.Err() != nil {
			break
		}
	}
	all.hist = total
	rep.Result = all.result(Payload{})
	if len(cfg.Payloads) == 1 {
		rep.Result.Payload = cfg.Payloads[0].Name
		rep.Result.PayloadBytes = len(cfg.Payloads[0].Data)
	}
	if runCtx.Err() != nil {
		return rep, r.explain(runCtx, "during the run", runCtx.Err())
	}
	return rep, nil
}

// explain turns the cancellation of the run into the reason for it.
func (r *runner) explain(runCtx context.Context, when string, err error) error {
	if errors.Is(context.Cause(runCtx), errRuntimeExited) {
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

func (r *runner) dial(addr string) error {
	for range r.cfg.Connections {
		c, err := client.Dial(addr, r.cfg.Dial)
		if err != nil {
			for _, c := range r.conns {
				c.Close()
			}
			r.conns = nil
			return err
		}
		r.conns = append(r.conns, c)
	}
	return nil
}

// waitReady waits for the runtime to accept TCP connections (polled every
// 10ms, so that gRPC's reconnection back-off does not delay the start), then
// for every gRPC connection to be ready (HTTP/2 and TLS handshakes done).
func (r *runner) waitReady(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	hostport := convention.HostPort(addr)
	var lastErr error
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", hostport)
		if err == nil {
			c.Close()
			break
		}
		var ne net.Error
		if lastErr == nil || !errors.As(err, &ne) || !ne.Timeout() {
			lastErr = err // rather a refusal than the dial the deadline cut short
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			if context.Cause(ctx) == context.DeadlineExceeded {
				return fmt.Errorf("runtime at %s accepted no connection within %s: %w", addr, r.cfg.ConnectTimeout, lastErr)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
	for i, c := range r.conns {
		c.Connect()
		for s := c.GetState(); s != connectivity.Ready; s = c.GetState() {
			if c.WaitForStateChange(ctx, s) {
				continue
			}
			if context.Cause(ctx) != context.DeadlineExceeded {
				return ctx.Err()
			}
			// Ask for the reason: a call that does not wait for the
			// connection fails with the last connection error.
			var resp response
			qctx, qcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			err := c.Invoke(qctx, r.method, newRequest(nil), &resp, r.opts...)
			qcancel()
			hint := ""
			if msg := fmt.Sprint(err); strings.Contains(msg, "server preface") || strings.Contains(msg, "handshake") {
				hint = " (plaintext against TLS or the other way round? check --cacert, --insecure and the runtime's server.cert)"
			}
			return fmt.Errorf("connection %d to %s not ready within %s (state %s): %w%s", i+1, addr, r.cfg.ConnectTimeout, s, err, hint)
		}
	}
	return nil
}

// firstCall makes one call and waits for its answer, whatever it is: the
// moment a started runtime has answered its first call.
func (r *runner) firstCall(ctx context.Context, req *request) {
	if r.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	var resp response
	_ = r.conns[0].Invoke(ctx, r.method, req, &resp, r.opts...) // any answer will do
}

// worker is one caller. Its counters are read by the progress reporter
// while it runs; everything else only by itself, then after it ends.
type worker struct {
	ok, errs  atomic.Int64
	rec       *recorder
	codes     [numCodes]int64
	samples   [numCodes]string
	_         [64]byte // keep workers' counters on separate cache lines
	recording bool
}

// recorder holds the latencies of one or more workers.
type recorder struct {
	mu       sync.Mutex
	hist     *hdrhistogram.Histogram
	min, max time.Duration
}

func (r *recorder) reset() {
	r.hist.Reset()
	r.min, r.max = 0, 0
}

func (r *recorder) record(lat time.Duration) {
	us := int64(lat / time.Microsecond)
	if us < histLowest {
		us = histLowest
	}
	if us > histHighest {
		us = histHighest
	}
	r.mu.Lock()
	_ = r.hist.RecordValue(us) // cannot fail: us is within range
	if r.min == 0 || lat < r.min {
		r.min = lat
	}
	if lat > r.max {
		r.max = lat
	}
	r.mu.Unlock()
}

// numCodes is the number of gRPC codes (0..16) plus one slot for a code
// outside that range.
const numCodes = 18

func (w *worker) reset(recording bool) {
	w.ok.Store(0)
	w.errs.Store(0)
	w.codes = [numCodes]int64{}
	w.samples = [numCodes]string{}
	w.recording = recording
}

func (w *worker) record(lat time.Duration, err error) {
	if !w.recording {
		return
	}
	if err != nil {
		st := status.Convert(err)
		i := int(st.Code())
		if i < 0 || i >= numCodes-1 {
			i = numCodes - 1
		}
		w.codes[i]++
		if w.samples[i] == "" {
			w.samples[i] = st.Message()
		}
		w.errs.Add(1)
		return
	}
	w.rec.record(lat)
	w.ok.Add(1)
}

// phaseState is shared by the workers of one phase.
type phaseState struct {
	req      *request
	total    int64
	duration time.Duration
	interval float64 // ns between intended starts; 0 = closed loop
	start    time.Time
	issued   atomic.Int64
	stopped  atomic.Bool
}

var noCancel = func() {}

// phase runs the workers once: total calls, or for duration, paced or not.
func (r *runner) phase(ctx context.Context, p Payload, req *request, total int, duration time.Duration, recording bool) *phaseResult {
	st := &phaseState{req: req, total: int64(total), duration: duration}
	if r.cfg.RPS > 0 {
		st.interval = float64(time.Second) / r.cfg.RPS
	}
	for _, w := range r.workers {
		w.reset(recording)
	}
	for _, rec := range r.recorders {
		rec.reset()
	}
	var wg sync.WaitGroup
	st.start = time.Now()
	if duration > 0 && st.interval == 0 {
		t := time.AfterFunc(duration, func() { st.stopped.Store(true) })
		defer t.Stop()
	}
	for i, w := range r.workers {
		conn := r.conns[i%len(r.conns)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx, w, conn, st)
		}()
	}
	done, progressDone := make(chan struct{}), make(chan struct{})
	if r.cfg.Progress != nil {
		go func() {
			defer close(progressDone)
			r.progress(p, st, recording, done)
		}()
	} else {
		close(progressDone)
	}
	wg.Wait()
	elapsed := time.Since(st.start)
	close(done)
	<-progressDone
	pr := newPhaseResult()
	pr.elapsed = elapsed
	for _, w := range r.workers {
		pr.addWorker(w)
	}
	for _, rec := range r.recorders {
		pr.hist.Merge(rec.hist)
		pr.minMax(rec.min, rec.max)
	}
	return pr
}

func (r *runner) work(ctx context.Context, w *worker, conn *grpc.ClientConn, st *phaseState) {
	var resp response
	var timer *time.Timer
	if st.interval > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
	}
	timeout := r.cfg.Timeout
	for ctx.Err() == nil && !st.stopped.Load() {
		i := st.issued.Add(1) - 1
		if st.total > 0 && i >= st.total {
			return
		}
		var start time.Time
		if st.interval > 0 {
			offset := time.Duration(float64(i) * st.interval)
			if st.duration > 0 && offset >= st.duration {
				return
			}
			start = st.start.Add(offset)
			if d := time.Until(start); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
		} else {
			start = time.Now()
		}
		callCtx, cancel := ctx, noCancel
		if timeout > 0 {
			callCtx, cancel = context.WithTimeout(ctx, timeout)
		}
		err := conn.Invoke(callCtx, r.method, st.req, &resp, r.opts...)
		lat := time.Since(start)
		cancel()
		if err != nil && ctx.Err() != nil {
			return // cancelled by the end of the run, not failed by the runtime
		}
		w.record(lat, err)
	}
}

func (r *runner) progress(p Payload, st *phaseState, recording bool, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		pg := Progress{Payload: p.Name, Warmup: !recording, Elapsed: time.Since(st.start), Total: int(st.total), Duration: st.duration}
		for _, w := range r.workers {
			pg.Done += w.ok.Load() + w.errs.Load()
			pg.Errors += w.errs.Load()
		}
		r.cfg.Progress(pg)
	}
}

// phaseResult gathers the workers' figures.
type phaseResult struct {
	hist     *hdrhistogram.Histogram
	ok, errs int64
	min, max time.Duration
	codes    [numCodes]int64
	samples  [numCodes]string
	elapsed  time.Duration
}

func newPhaseResult() *phaseResult {
	return &phaseResult{hist: newHistogram()}
}

func (pr *phaseResult) addWorker(w *worker) {
	pr.ok += w.ok.Load()
	pr.errs += w.errs.Load()
	for i := range w.codes {
		pr.codes[i] += w.codes[i]
		if pr.samples[i] == "" {
			pr.samples[i] = w.samples[i]
		}
	}
}

func (pr *phaseResult) minMax(lo, hi time.Duration) {
	if lo > 0 && (pr.min == 0 || lo < pr.min) {
		pr.min = lo
	}
	if hi > pr.max {
		pr.max = hi
	}
}

// add adds another phase's counts (not its histogram) to pr.
func (pr *phaseResult) add(o *phaseResult) {
	pr.ok += o.ok
	pr.errs += o.errs
	pr.minMax(o.min, o.max)
	pr.elapsed += o.elapsed
	for i := range o.codes {
		pr.codes[i] += o.codes[i]
		if pr.samples[i] == "" {
			pr.samples[i] = o.samples[i]
		}
	}
}

func (pr *phaseResult) result(p Payload) Result {
	res := Result{
		Payload:      p.Name,
		PayloadBytes: len(p.Data),
		Requests:     pr.ok + pr.errs,
		OK:           pr.ok,
		Errors:       pr.errs,
		Elapsed:      pr.elapsed,
	}
	if pr.elapsed > 0 {
		res.RPS = float64(res.Requests) / pr.elapsed.Seconds()
	}
	for i, n := range pr.codes {
		if n == 0 {
			continue
		}
		name := "OTHER"
		if i < numCodes-1 {
			name = client.CodeName(codes.Code(i))
		}
		if res.ErrorCodes == nil {
			res.ErrorCodes = map[string]int64{}
			res.ErrorSamples = map[string]string{}
		}
		res.ErrorCodes[name] += n
		res.ErrorSamples[name] = pr.samples[i]
	}
	res.Latency = latency(pr.hist, pr.min, pr.max)
	res.Histogram = buckets(pr.hist, pr.min, pr.max, 10)
	return res
}

// latency reads the percentiles off h. They are exact to three significant
// digits; min and max are exact, and the percentiles are kept within them.
func latency(h *hdrhistogram.Histogram, lo, hi time.Duration) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	clamp := func(d time.Duration) time.Duration {
		return min(max(d, lo), hi)
	}
	q := func(p float64) time.Duration {
		return clamp(time.Duration(h.ValueAtQuantile(p)) * time.Microsecond)
	}
	return Latency{
		Min:  lo,
		Mean: clamp(time.Duration(h.Mean() * float64(time.Microsecond))),
		P50:  q(50),
		P90:  q(90),
		P99:  q(99),
		P999: q(99.9),
		Max:  hi,
	}
}

// buckets divides [lo, hi] into n buckets of equal ratio (a logarithmic
// scale, which shows a long tail and a narrow peak alike) and counts h's
// values in each.
func buckets(h *hdrhistogram.Histogram, lo, hi time.Duration, n int) []Bucket {
	if h.TotalCount() == 0 {
		return nil
	}
	loUS := max(float64(lo)/float64(time.Microsecond), 1)
	hiUS := float64(hi) / float64(time.Microsecond)
	if hiUS <= loUS*1.01 {
		return []Bucket{{UpTo: hi, Count: h.TotalCount()}}
	}
	out := make([]Bucket, n)
	edges := make([]float64, n)
	for k := range n {
		edges[k] = loUS * math.Pow(hiUS/loUS, float64(k+1)/float64(n))
		out[k].UpTo = time.Duration(edges[k] * float64(time.Microsecond))
	}
	out[n-1].UpTo = hi
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := float64(bar.From)
		k := 0
		for k < n-1 && v > edges[k] {
			k++
		}
		out[k].Count += bar.Count
	}
	return out
}
