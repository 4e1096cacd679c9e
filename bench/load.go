package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// worker is one caller. Its counters are read by the progress reporter
// while it runs; everything else only by itself, then after it ends.
type worker struct {
	// ok and errs are read by the progress reporter while the worker runs;
	// the rest of its tally only by the worker, then after it ends.
	ok, errs  atomic.Int64
	rec       *recorder
	tally     tally
	_         [64]byte // keep workers' counters on separate cache lines
	recording bool
}

// counts returns the worker's tally, once it has ended.
func (w *worker) counts() *tally {
	t := w.tally
	t.ok, t.errs = w.ok.Load(), w.errs.Load()
	return &t
}

// numCodes is the number of gRPC codes (0..16) plus one slot for a code
// outside that range.
const numCodes = 18

func (w *worker) reset(recording bool) {
	w.ok.Store(0)
	w.errs.Store(0)
	w.tally = tally{}
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
		w.tally.codes[i]++
		if w.tally.samples[i] == "" {
			w.tally.samples[i] = st.Message()
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
	if st.interval > 0 {
		// A paced phase lasts its schedule: n calls at r calls/s take n/r
		// seconds however fast the runtime answers, so that the rate
		// reported is the pace kept, never more.
		end := st.duration
		if st.total > 0 {
			end = time.Duration(float64(st.total) * st.interval)
		}
		if d := time.Until(st.start.Add(end)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	elapsed := time.Since(st.start)
	close(done)
	<-progressDone
	pr := newPhaseResult()
	pr.elapsed = elapsed
	for _, w := range r.workers {
		pr.tally.add(w.counts())
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
