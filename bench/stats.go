package bench

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc/codes"

	"github.com/oe-rt/oe-rt/client"
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

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
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

// tally counts calls: the successful ones, and the errors by code with the
// first message seen for each. A worker keeps one; a phase adds up its
// workers'; the whole run adds up its phases'.
type tally struct {
	ok, errs int64
	codes    [numCodes]int64
	samples  [numCodes]string
}

// add adds o's counts to t, keeping t's first messages.
func (t *tally) add(o *tally) {
	t.ok += o.ok
	t.errs += o.errs
	for i := range o.codes {
		t.codes[i] += o.codes[i]
		if t.samples[i] == "" {
			t.samples[i] = o.samples[i]
		}
	}
}

// phaseResult holds the figures of one phase, or of several added up.
type phaseResult struct {
	tally
	hist     *hdrhistogram.Histogram
	min, max time.Duration
	elapsed  time.Duration
}

func newPhaseResult() *phaseResult {
	return &phaseResult{hist: newHistogram()}
}

func (pr *phaseResult) minMax(lo, hi time.Duration) {
	if lo > 0 && (pr.min == 0 || lo < pr.min) {
		pr.min = lo
	}
	if hi > pr.max {
		pr.max = hi
	}
}

// add adds another phase's figures to pr: counts, extremes, time and
// histogram.
func (pr *phaseResult) add(o *phaseResult) {
	pr.tally.add(&o.tally)
	pr.minMax(o.min, o.max)
	pr.elapsed += o.elapsed
	pr.hist.Merge(o.hist)
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
	if res.Histogram == nil {
		res.Histogram = []Bucket{} // no successful call: an empty histogram, not none
	}
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
