// Package printer writes a bench.Report for people (Text), for programs
// (JSON), and shows a run's progress on a terminal (ProgressLine). Printers
// take a finished report and an io.Writer; they know nothing of the run, so
// their tests build reports by hand.
package printer

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/oe-rt/oe-rt/bench"
)

// JSON writes rep as one indented JSON object. Its fields:
//
//	target, method, function, concurrency, connections, target_rps, total, duration_s
//	payload, payload_bytes, requests, ok, errors, error_codes {Code: n},
//	error_samples {Code: message}, elapsed_s, rps,
//	latency_ms {min, mean, p50, p90, p99, p999, max}, histogram [{le_ms, count}]
//	sweep [ one object per payload with the fields of the line above ]
//	runtime {startup_ms, peak_rss_bytes, peak_rss_mib, peak_threads, samples}
//
// Every field is always there, so that a program can read a report without
// guessing: target_rps, total and duration_s are null when the load did not
// set them, histogram is [] when no call succeeded, sweep and runtime are
// null when there was none. For a sweep the top-level figures add up all
// payloads: payload lists their names ("1k,64k") and payload_bytes is null.
func JSON(w io.Writer, rep *bench.Report) error {
	out := jsonReport{
		Target:      rep.Target,
		Method:      rep.Method,
		Function:    rep.Function,
		Concurrency: rep.Concurrency,
		Connections: rep.Connections,
		jsonResult:  toJSON(rep.Result),
	}
	if rep.TargetRPS > 0 {
		out.TargetRPS = &rep.TargetRPS
	}
	if rep.Total > 0 {
		out.Total = &rep.Total
	}
	if rep.Duration > 0 {
		d := rep.Duration.Seconds()
		out.DurationS = &d
	}
	for _, r := range rep.Sweep {
		out.Sweep = append(out.Sweep, toJSON(r))
	}
	if len(rep.Sweep) > 0 {
		out.PayloadBytes = nil
	}
	if rt := rep.Runtime; rt != nil {
		out.Runtime = &jsonRuntime{
			StartupMS:    ms(rt.Startup),
			PeakRSSBytes: rt.PeakRSS,
			PeakRSSMiB:   round(float64(rt.PeakRSS)/(1<<20), 1),
			PeakThreads:  rt.PeakThreads,
			Samples:      rt.Samples,
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

type jsonReport struct {
	Target      string   `json:"target"`
	Method      string   `json:"method"`
	Function    string   `json:"function"`
	Concurrency int      `json:"concurrency"`
	Connections int      `json:"connections"`
	TargetRPS   *float64 `json:"target_rps"`
	Total       *int     `json:"total"`
	DurationS   *float64 `json:"duration_s"`
	jsonResult
	Sweep   []jsonResult `json:"sweep"`
	Runtime *jsonRuntime `json:"runtime"`
}

type jsonResult struct {
	Payload      string            `json:"payload"`
	PayloadBytes *int              `json:"payload_bytes"`
	Requests     int64             `json:"requests"`
	OK           int64             `json:"ok"`
	Errors       int64             `json:"errors"`
	ErrorCodes   map[string]int64  `json:"error_codes"`
	ErrorSamples map[string]string `json:"error_samples"`
	ElapsedS     float64           `json:"elapsed_s"`
	RPS          float64           `json:"rps"`
	LatencyMS    jsonLatency       `json:"latency_ms"`
	Histogram    []jsonBucket      `json:"histogram"`
}

type jsonLatency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

type jsonBucket struct {
	LeMS  float64 `json:"le_ms"`
	Count int64   `json:"count"`
}

type jsonRuntime struct {
	StartupMS    float64 `json:"startup_ms"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	PeakThreads  int     `json:"peak_threads"`
	Samples      int     `json:"samples"`
}

func toJSON(r bench.Result) jsonResult {
	j := jsonResult{
		Payload:      r.Payload,
		PayloadBytes: &r.PayloadBytes,
		Requests:     r.Requests,
		OK:           r.OK,
		Errors:       r.Errors,
		ErrorCodes:   r.ErrorCodes,
		ErrorSamples: r.ErrorSamples,
		ElapsedS:     round(r.Elapsed.Seconds(), 3),
		RPS:          round(r.RPS, 1),
		LatencyMS: jsonLatency{
			Min: ms(r.Latency.Min), Mean: ms(r.Latency.Mean), P50: ms(r.Latency.P50), P90: ms(r.Latency.P90),
			P99: ms(r.Latency.P99), P999: ms(r.Latency.P999), Max: ms(r.Latency.Max),
		},
	}
	// Every field is always there: no errors is {}, not a missing field.
	if j.ErrorCodes == nil {
		j.ErrorCodes = map[string]int64{}
	}
	if j.ErrorSamples == nil {
		j.ErrorSamples = map[string]string{}
	}
	j.Histogram = []jsonBucket{}
	for _, b := range r.Histogram {
		j.Histogram = append(j.Histogram, jsonBucket{LeMS: ms(b.UpTo), Count: b.Count})
	}
	return j
}

// ms converts d to milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// Text writes rep as a summary for people.
func Text(w io.Writer, rep *bench.Report) error {
	ew := &errWriter{w: w}
	load := fmt.Sprintf("%d callers on %s", rep.Concurrency, plural(rep.Connections, "connection"))
	switch {
	case rep.TargetRPS > 0 && rep.Duration > 0:
		load += fmt.Sprintf(", %g calls/s for %s", rep.TargetRPS, rep.Duration)
	case rep.TargetRPS > 0:
		load += fmt.Sprintf(", %d calls at %g calls/s", rep.Total, rep.TargetRPS)
	case rep.Duration > 0:
		load += fmt.Sprintf(", for %s", rep.Duration)
	default:
		load += fmt.Sprintf(", %d calls", rep.Total)
	}
	ew.printf("Target   %s %s, function %s\n", rep.Target, rep.Method, rep.Function)
	ew.printf("Load     %s\n", load)
	if len(rep.Sweep) > 0 {
		ew.printf("\nPayload sweep (latency of successful calls):\n")
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "payload\tbytes\trequests\terrors\tcalls/s\tp50\tp90\tp99\tp99.9\tmax\t")
		for _, r := range rep.Sweep {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", r.Payload, r.PayloadBytes, r.Requests, r.Errors, r.RPS,
				dur(r.Latency.P50), dur(r.Latency.P90), dur(r.Latency.P99), dur(r.Latency.P999), dur(r.Latency.Max))
		}
		tw.Flush()
		ew.printf("\nAll payloads:\n")
	} else if rep.PayloadBytes > 0 || rep.Payload != "" {
		ew.printf("Payload  %s (%s)\n", nameOr(rep.Payload, "inline"), plural(rep.PayloadBytes, "byte"))
	}
	r := rep.Result
	ew.printf("\nRequests %d (ok %d, errors %d) in %s\n", r.Requests, r.OK, r.Errors, r.Elapsed.Round(time.Millisecond))
	if rep.TargetRPS > 0 {
		ew.printf("Rate     %.1f calls/s (target %g calls/s)\n", r.RPS, rep.TargetRPS)
	} else {
		ew.printf("Rate     %.1f calls/s\n", r.RPS)
	}
	if r.OK > 0 {
		l := r.Latency
		ew.printf("\nLatency of successful calls")
		if rep.TargetRPS > 0 {
			ew.printf(" (from each call's intended start)")
		}
		ew.printf(":\n  min %s  mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
			dur(l.Min), dur(l.Mean), dur(l.P50), dur(l.P90), dur(l.P99), dur(l.P999), dur(l.Max))
		histogram(ew, r.Histogram)
	}
	if len(r.ErrorCodes) > 0 {
		ew.printf("\nErrors by status code:\n")
		names := make([]string, 0, len(r.ErrorCodes))
		for n := range r.ErrorCodes {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			return r.ErrorCodes[names[i]] > r.ErrorCodes[names[j]] || (r.ErrorCodes[names[i]] == r.ErrorCodes[names[j]] && names[i] < names[j])
		})
		for _, n := range names {
			ew.printf("  %-18s %8d  e.g. %q\n", n, r.ErrorCodes[n], r.ErrorSamples[n])
		}
	}
	if rt := rep.Runtime; rt != nil {
		ew.printf("\nRuntime (started by bench):\n")
		ew.printf("  start-up  %s to the first answered call\n", dur(rt.Startup))
		ew.printf("  peak RSS  %.1f MiB (process tree, each process's own high-water mark)\n", float64(rt.PeakRSS)/(1<<20))
		few := ""
		if rt.Samples < bench.FewSamples {
			few = fmt.Sprintf(", from only %d samples: a short peak may have been missed", rt.Samples)
		}
		ew.printf("  threads   %d at most (process tree%s)\n", rt.PeakThreads, few)
	}
	return ew.err
}

// histogram draws the buckets as bars 40 characters wide at most.
func histogram(ew *errWriter, bs []bench.Bucket) {
	var peak int64
	for _, b := range bs {
		peak = max(peak, b.Count)
	}
	if peak == 0 {
		return
	}
	for _, b := range bs {
		bar := strings.Repeat("█", int((b.Count*40+peak-1)/peak))
		ew.printf("  ≤ %9s  %-40s %d\n", dur(b.UpTo), bar, b.Count)
	}
}

// dur formats a latency in milliseconds with three significant digits.
func dur(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64) + "ms"
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64) + "ms"
	case f >= 1:
		return strconv.FormatFloat(f, 'f', 2, 64) + "ms"
	default:
		return strconv.FormatFloat(f, 'f', 3, 64) + "ms"
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func nameOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, a ...any) { fmt.Fprintf(e, format, a...) }

// Violations writes the bounds a report broke, one a line.
func Violations(w io.Writer, vs []bench.Violation) error {
	ew := &errWriter{w: w}
	for _, v := range vs {
		ew.printf("assert failed: %s\n", v.Error())
	}
	return ew.err
}

// ProgressLine shows a run's progress as one line that it redraws; use it
// only when w is a terminal. Update fits bench.Config.Progress.
type ProgressLine struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

// NewProgressLine returns a ProgressLine writing to w.
func NewProgressLine(w io.Writer) *ProgressLine { return &ProgressLine{w: w} }

// Update redraws the line.
func (p *ProgressLine) Update(pg bench.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, "\r\x1b[K"+progressText(pg))
	p.drawn = true
}

// ProgressLog shows a run's progress where a line cannot be redrawn (a CI
// log, a file): a plain line at most every Every. Update fits
// bench.Config.Progress.
type ProgressLog struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	last  time.Duration // Elapsed of the last line
	warm  bool          // the last line was a warmup line
	began bool
}

// NewProgressLog returns a ProgressLog writing to w a line at most every
// every.
func NewProgressLog(w io.Writer, every time.Duration) *ProgressLog {
	return &ProgressLog{w: w, every: every}
}

// Update writes a line when every has passed since the last one (and for
// the first update of the measured phase after a warmup).
func (p *ProgressLog) Update(pg bench.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.began && pg.Warmup == p.warm && pg.Elapsed >= p.last && pg.Elapsed-p.last < p.every {
		return
	}
	if !p.began && pg.Elapsed < p.every {
		return // a run shorter than every shows no progress: its report follows at once
	}
	p.began, p.warm, p.last = true, pg.Warmup, pg.Elapsed
	io.WriteString(p.w, "bench: "+progressText(pg)+"\n")
}

// progressText is a progress line's text.
func progressText(pg bench.Progress) string {
	var b strings.Builder
	if pg.Payload != "" {
		fmt.Fprintf(&b, "[%s] ", pg.Payload)
	}
	if pg.Warmup {
		fmt.Fprintf(&b, "warming up %s", pg.Elapsed.Round(100*time.Millisecond))
	} else {
		switch {
		case pg.Total > 0:
			fmt.Fprintf(&b, "%d/%d calls (%d%%)", pg.Done, pg.Total, pg.Done*100/int64(pg.Total))
		default:
			fmt.Fprintf(&b, "%d calls", pg.Done)
		}
		fmt.Fprintf(&b, ", %d errors, %s", pg.Errors, pg.Elapsed.Round(100*time.Millisecond))
		if pg.Duration > 0 {
			fmt.Fprintf(&b, " of %s", pg.Duration)
		}
		if s := pg.Elapsed.Seconds(); s > 0 {
			fmt.Fprintf(&b, ", %.0f calls/s", float64(pg.Done)/s)
		}
	}
	return b.String()
}

// Clear erases the line, if one was drawn.
func (p *ProgressLine) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		io.WriteString(p.w, "\r\x1b[K")
		p.drawn = false
	}
}
