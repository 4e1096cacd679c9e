package bench

import (
	"time"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// Report is the outcome of Run: plain data. The printers (package
// bench/printer) take a Report and an io.Writer and define the JSON form.
type Report struct {
	// Target is the address that was loaded.
	Target string
	// Method is the gRPC method, e.g. "/openedge.Function/Call".
	Method string
	// Function is the FunctionName of the calls.
	Function string
	// Concurrency, Connections, RPS (target rate; 0 = as fast as possible),
	// Total and Duration repeat the configuration.
	Concurrency int
	Connections int
	TargetRPS   float64
	Total       int
	Duration    time.Duration

	// Result holds the figures of the run; for a sweep of payload sizes it
	// adds up all sizes (latency percentiles over all calls), and Sweep has
	// one Result per size.
	Result
	Sweep []Result

	// Runtime is set when bench started the runtime.
	Runtime *RuntimeReport
}

// Result holds the figures of one payload (or of all, in Report.Result).
type Result struct {
	// Payload names the payload ("1k", a file name, "inline", or "" for the
	// empty payload); PayloadBytes is its size.
	Payload      string
	PayloadBytes int
	// Requests counts the calls made and completed in the measured phase:
	// Requests = OK + Errors.
	Requests int64
	OK       int64
	Errors   int64
	// ErrorCodes counts the errors by gRPC status code, spelled as by
	// CodeName ("UNKNOWN", "NOT_FOUND", ...).
	ErrorCodes map[string]int64
	// ErrorSamples holds the first error message seen for each code.
	ErrorSamples map[string]string
	// Elapsed is the wall time of the measured phase: from its start to the
	// return of its last call.
	Elapsed time.Duration
	// RPS is Requests / Elapsed.
	RPS float64
	// Latency is the distribution of the successful calls' latencies.
	Latency Latency
	// Histogram is the latency distribution as buckets, for plotting.
	Histogram []Bucket
}

// Latency holds latency percentiles. In JSON they are milliseconds.
type Latency struct {
	Min  time.Duration
	Mean time.Duration
	P50  time.Duration
	P90  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
}

// Bucket is one bar of a latency histogram: Count calls took at most UpTo
// (and more than the previous bucket's UpTo).
type Bucket struct {
	UpTo  time.Duration
	Count int64
}

// RuntimeReport is what bench saw of a runtime it started.
type RuntimeReport struct {
	// Startup is the time from starting the process to its first answered
	// call.
	Startup time.Duration
	// Usage is what the launcher's sampler saw of the runtime's process
	// tree: PeakRSS (each process's own high-water mark, so that no peak
	// between samples is missed), PeakThreads, and how many Samples.
	launch.Usage
}
