package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/internal/size"
)

// Metric names a figure of a Report that a Bound can hold to.
type Metric string

// The metrics of --assert. Latencies take a duration (20ms, 1.5s, 800us);
// errors takes a count or a percentage of the requests (1%); rss takes a
// size (50m, 48MiB, 1g: see internal/size); the others take plain numbers.
const (
	MetricP50      Metric = "p50"
	MetricP90      Metric = "p90"
	MetricP99      Metric = "p99"
	MetricP999     Metric = "p999"
	MetricMax      Metric = "max"
	MetricMean     Metric = "mean"
	MetricRPS      Metric = "rps"
	MetricErrors   Metric = "errors"
	MetricRequests Metric = "requests"
	MetricRSS      Metric = "rss"
	MetricThreads  Metric = "threads"
)

type metricKind int

const (
	kindDuration metricKind = iota
	kindCount
	kindNumber
	kindSize
)

var metrics = map[Metric]metricKind{
	MetricP50: kindDuration, MetricP90: kindDuration, MetricP99: kindDuration,
	MetricP999: kindDuration, MetricMax: kindDuration, MetricMean: kindDuration,
	MetricRPS: kindNumber, MetricErrors: kindCount, MetricRequests: kindNumber,
	MetricRSS: kindSize, MetricThreads: kindNumber,
}

// metricAliases are other spellings accepted for a metric.
var metricAliases = map[string]Metric{"p99.9": MetricP999, "peak_rss": MetricRSS, "error": MetricErrors}

// Op is a comparison.
type Op string

// The comparisons of --assert.
const (
	OpLess      Op = "<"
	OpLessEq    Op = "<="
	OpGreater   Op = ">"
	OpGreaterEq Op = ">="
	OpEqual     Op = "="
)

// Bound is one parsed condition of --assert, such as p99<20ms.
type Bound struct {
	Metric Metric
	Op     Op
	// Duration is the value of a latency bound.
	Duration time.Duration
	// Value is the value of any other bound: a count, a rate, bytes, or a
	// percentage when Percent is set.
	Value   float64
	Percent bool
	// Text is the condition as written, ValueText its value part.
	Text, ValueText string
}

// NeedsRuntime reports whether the bound is about a runtime that bench
// started (rss, threads).
func (b Bound) NeedsRuntime() bool { return b.Metric == MetricRSS || b.Metric == MetricThreads }

func (b Bound) String() string { return b.Text }

// ParseAssert parses a comma-separated list of bounds, e.g.
// "p99<20ms,errors=0,rps>5000". Each is METRIC OP VALUE with OP one of
// < <= > >= = (== is taken as =).
func ParseAssert(s string) ([]Bound, error) {
	var out []Bound
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		b, err := parseBound(part)
		if err != nil {
			return nil, fmt.Errorf("bad --assert condition %q: %w", part, err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bad --assert %q: no condition (want e.g. 'p99<20ms,errors=0,rps>5000')", s)
	}
	return out, nil
}

func parseBound(s string) (Bound, error) {
	i := strings.IndexAny(s, "<>=!")
	if i < 0 {
		return Bound{}, fmt.Errorf("no comparison: want METRIC OP VALUE with OP one of < <= > >= =, e.g. p99<20ms")
	}
	name := strings.ToLower(strings.TrimSpace(s[:i]))
	rest := s[i:]
	var op Op
	for _, o := range []string{"<=", ">=", "==", "<", ">", "="} {
		if strings.HasPrefix(rest, o) {
			op = Op(o)
			rest = rest[len(o):]
			break
		}
	}
	if op == "" || strings.ContainsAny(rest[:min(1, len(rest))], "<>=!") {
		return Bound{}, fmt.Errorf("unknown comparison in %q: want one of < <= > >= =", s)
	}
	if op == "==" {
		op = OpEqual
	}
	m := Metric(name)
	if a, ok := metricAliases[name]; ok {
		m = a
	}
	kind, ok := metrics[m]
	if !ok {
		return Bound{}, fmt.Errorf("unknown metric %q: want one of p50, p90, p99, p999, max, mean, rps, errors, requests, rss, threads", name)
	}
	val := strings.TrimSpace(rest)
	if val == "" {
		return Bound{}, fmt.Errorf("no value after %s", op)
	}
	b := Bound{Metric: m, Op: op, Text: s, ValueText: val}
	switch kind {
	case kindDuration:
		d, err := time.ParseDuration(val)
		if err != nil {
			if _, nerr := strconv.ParseFloat(val, 64); nerr == nil {
				return Bound{}, fmt.Errorf("%s needs a unit, e.g. %sms", name, val)
			}
			return Bound{}, fmt.Errorf("bad duration %q (e.g. 20ms, 1.5s, 800us)", val)
		}
		b.Duration = d
	case kindSize:
		n, err := size.Parse(val)
		if err != nil {
			return Bound{}, err
		}
		b.Value = float64(n)
	case kindCount:
		if strings.HasSuffix(val, "%") {
			b.Percent = true
			val = strings.TrimSpace(strings.TrimSuffix(val, "%"))
		}
		fallthrough
	case kindNumber:
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return Bound{}, fmt.Errorf("bad number %q", val)
		}
		b.Value = f
	}
	return b, nil
}

// Violation is a bound that a report broke.
type Violation struct {
	Bound Bound
	// Payload names the payload of the sweep it was broken for ("" when
	// there is no sweep).
	Payload string
	// Got is the figure the report had, formatted like the bound's value.
	Got string
}

func (v Violation) Error() string {
	where := ""
	if v.Payload != "" {
		where = " (payload " + v.Payload + ")"
	}
	return fmt.Sprintf("%s is %s, want %s %s%s", v.Bound.Metric, v.Got, v.Bound.Op, v.Bound.ValueText, where)
}

// Check holds rep to the bounds and returns the broken ones. For a sweep
// every payload's result is checked on its own.
func Check(rep *Report, bounds []Bound) []Violation {
	results := []Result{rep.Result}
	if len(rep.Sweep) > 0 {
		results = rep.Sweep
	}
	var out []Violation
	for _, b := range bounds {
		if b.NeedsRuntime() {
			if v, ok := checkRuntime(rep.Runtime, b); !ok {
				out = append(out, v)
			}
			continue
		}
		for _, res := range results {
			where := ""
			if len(rep.Sweep) > 0 {
				where = res.Payload
			}
			if got, ok := checkResult(res, b); !ok {
				out = append(out, Violation{Bound: b, Payload: where, Got: got})
			}
		}
	}
	return out
}

func checkRuntime(rt *RuntimeReport, b Bound) (Violation, bool) {
	if rt == nil {
		return Violation{Bound: b, Got: "unknown (bench did not start the runtime)"}, false
	}
	if b.Metric == MetricRSS {
		got := float64(rt.PeakRSS)
		return Violation{Bound: b, Got: fmt.Sprintf("%.1fMiB", got/(1<<20))}, compare(got, b.Op, b.Value)
	}
	got := float64(rt.PeakThreads)
	return Violation{Bound: b, Got: strconv.Itoa(rt.PeakThreads)}, compare(got, b.Op, b.Value)
}

func checkResult(res Result, b Bound) (string, bool) {
	var d time.Duration
	switch b.Metric {
	case MetricP50:
		d = res.Latency.P50
	case MetricP90:
		d = res.Latency.P90
	case MetricP99:
		d = res.Latency.P99
	case MetricP999:
		d = res.Latency.P999
	case MetricMax:
		d = res.Latency.Max
	case MetricMean:
		d = res.Latency.Mean
	case MetricRPS:
		return strconv.FormatFloat(res.RPS, 'f', 1, 64), compare(res.RPS, b.Op, b.Value)
	case MetricRequests:
		return strconv.FormatInt(res.Requests, 10), compare(float64(res.Requests), b.Op, b.Value)
	case MetricErrors:
		if b.Percent {
			pct := 0.0
			if res.Requests > 0 {
				pct = 100 * float64(res.Errors) / float64(res.Requests)
			} else {
				pct = 100 // no call answered: as bad as it gets
			}
			return strconv.FormatFloat(pct, 'g', 4, 64) + "%", compare(pct, b.Op, b.Value)
		}
		return strconv.FormatInt(res.Errors, 10), compare(float64(res.Errors), b.Op, b.Value)
	}
	if res.OK == 0 {
		// No successful call: there is no latency to hold to a bound.
		return "unknown (no successful call)", false
	}
	return d.String(), compare(float64(d), b.Op, float64(b.Duration))
}

func compare(got float64, op Op, want float64) bool {
	switch op {
	case OpLess:
		return got < want
	case OpLessEq:
		return got <= want
	case OpGreater:
		return got > want
	case OpGreaterEq:
		return got >= want
	default:
		return got == want
	}
}
