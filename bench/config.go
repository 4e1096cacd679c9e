package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/size"
)

// Config describes one load test. NewConfig returns the defaults; the command
// layer binds its flags onto the fields.
type Config struct {
	// Address is the runtime to load (host:port). Either Address or Start
	// must be set.
	Address string
	// Start, when Address is empty, starts the runtime before the run and
	// Run stops it afterwards. See Starter.
	Start Starter

	// Schema is the Call method and message types (nil means client.OpenEdge()).
	Schema *client.Schema
	// Dial holds the TLS and message size options of the connections.
	Dial client.Options

	// Function is the FunctionName of every call (default "echo").
	Function string
	// Payloads lists the payloads to send. Each gets a run of its own and a
	// Result of its own (a sweep); nil means one empty payload.
	Payloads []Payload

	// Concurrency is the number of callers; each has at most one call in
	// flight (default 10).
	Concurrency int
	// Connections is the number of gRPC connections the callers share,
	// round-robin (default 1). It cannot exceed Concurrency.
	Connections int
	// Total is the number of calls to make (per payload). Total and Duration
	// are exclusive; when neither is set Total is 1000.
	Total int
	// Duration, when set, makes callers call until it has passed.
	Duration time.Duration
	// RPS, when above zero, fixes the arrival rate: call i is due at
	// start + i/RPS, whether or not earlier calls have returned, and its
	// latency is measured from that intended start (coordinated omission).
	// At most Concurrency calls are in flight; a due call waits for a free
	// caller, and the wait counts in its latency.
	RPS float64
	// Warmup is how long to call before measuring, per payload; calls made
	// during the warmup are not counted.
	Warmup time.Duration
	// Timeout bounds each call (default 20s; a call that times out counts as
	// a DeadlineExceeded error).
	Timeout time.Duration
	// ConnectTimeout bounds the wait for the connections to be ready
	// (default 10s).
	ConnectTimeout time.Duration

	// Progress, when set, is called about every ProgressInterval while calls
	// are made, from one goroutine.
	Progress func(Progress)
	// ProgressInterval defaults to 500ms.
	ProgressInterval time.Duration
}

// NewConfig returns a Config with the defaults: echo, 10 callers on one
// connection, 1000 calls, an empty payload, a 20s timeout per call.
func NewConfig() Config {
	return Config{
		Function:         "echo",
		Concurrency:      10,
		Connections:      1,
		Total:            1000,
		Timeout:          20 * time.Second,
		ConnectTimeout:   10 * time.Second,
		ProgressInterval: 500 * time.Millisecond,
	}
}

// Validate reports the first problem with c as a *ConfigError whose
// message is fit for a user.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return &ConfigError{Err: err}
	}
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.Address == "" && c.Start == nil:
		return errors.New("no runtime: give an address or a runtime to start")
	case c.Address != "" && c.Start != nil:
		return errors.New("give an address or a runtime to start, not both")
	case c.Function == "":
		return errors.New("function name is empty")
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.Connections < 1:
		return fmt.Errorf("connections must be at least 1, got %d", c.Connections)
	case c.Connections > c.Concurrency:
		return fmt.Errorf("connections (%d) cannot exceed concurrency (%d)", c.Connections, c.Concurrency)
	case c.Total < 0:
		return fmt.Errorf("number of calls must not be negative, got %d", c.Total)
	case c.Duration < 0:
		return fmt.Errorf("duration must not be negative, got %s", c.Duration)
	case c.Total > 0 && c.Duration > 0:
		return errors.New("give a number of calls or a duration, not both")
	case c.Total == 0 && c.Duration == 0:
		return errors.New("give a number of calls or a duration")
	case math.IsNaN(c.RPS) || math.IsInf(c.RPS, 0):
		return fmt.Errorf("rps must be a finite number of calls per second, got %g", c.RPS)
	case c.RPS < 0:
		return fmt.Errorf("rps must not be negative, got %g", c.RPS)
	case c.Warmup < 0:
		return fmt.Errorf("warmup must not be negative, got %s", c.Warmup)
	case c.Timeout < 0:
		return fmt.Errorf("timeout must not be negative, got %s", c.Timeout)
	}
	seen := map[string]bool{}
	for _, p := range c.Payloads {
		if seen[p.Name] {
			return fmt.Errorf("payload %s given twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// ConfigError is a configuration that cannot make a run, found before
// anything was started or sent.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// StartError is a runtime that Config.Start could not start.
type StartError struct{ Err error }

func (e *StartError) Error() string { return "start runtime: " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// A Starter starts a runtime for a run. It returns once the process is
// started; Run waits for the runtime to answer a call. The returned Runtime
// is stopped by Run in every case.
type Starter func(ctx context.Context) (Runtime, error)

// Runtime is a runtime process that bench started (see Starter). The
// launcher that implements it owns the process: its group, its output, its
// descendants.
type Runtime interface {
	// Address is the host:port the runtime was told to listen on.
	Address() string
	// Exited is closed when the runtime's process has exited.
	Exited() <-chan struct{}
	// ExitErr tells, after Exited is closed, how the process ended, with
	// what it wrote last, as an error (nil for a clean exit).
	ExitErr() error
	// Usage returns the peak resources of the runtime's process tree so far.
	Usage() Usage
	// Stop ends the runtime (SIGTERM, then SIGKILL after a grace period)
	// and every process it started, and waits for them. It returns how the
	// process exited when it was not asked to (nil when it stopped cleanly).
	Stop(ctx context.Context) error
}

// Usage is what a started runtime used at its peak.
type Usage struct {
	// PeakRSS is the highest resident set size of the whole process tree,
	// in bytes, seen by sampling.
	PeakRSS int64
	// PeakThreads is the highest number of threads of the process tree.
	PeakThreads int
	// Samples is how many times the tree was sampled.
	Samples int
}

// Payload is one request payload.
type Payload struct {
	// Name labels the payload in reports: its size ("1k") for random
	// payloads, the file name, or "inline".
	Name string
	// Data is sent as the Payload field of every call.
	Data []byte
}

// InlinePayload returns a payload of the given text.
func InlinePayload(s string) Payload { return Payload{Name: "inline", Data: []byte(s)} }

// FilePayload reads a payload from a file.
func FilePayload(path string) (Payload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Payload{}, fmt.Errorf("read payload: %w", err)
	}
	return Payload{Name: path, Data: b}, nil
}

// RandomPayload returns n pseudo-random bytes, the same for the same n (a
// fixed seed keeps runs comparable).
func RandomPayload(name string, n int) Payload {
	r := rand.New(rand.NewChaCha8([32]byte{'o', 'e', '-', 'r', 't'}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return Payload{Name: name, Data: b}
}

// maxRandomPayload bounds a random payload: more would not fit in a
// gRPC message anyway.
const maxRandomPayload = 2 << 30

// ParseSizes parses a comma-separated list of sizes for RandomPayload:
// "512", "1k", "64k,1m". Sizes are read by internal/size (1024-based units
// k, m, g; any case; an optional b or ib); each payload is named as written.
func ParseSizes(s string) ([]Payload, error) {
	var out []Payload
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := size.Parse(f)
		if err != nil {
			return nil, err
		}
		if n > maxRandomPayload {
			return nil, fmt.Errorf("size %q is too large: at most 2g", f)
		}
		out = append(out, RandomPayload(f, int(n)))
	}
	return out, nil
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	// Payload is the name of the payload being sent.
	Payload string
	// Warmup is true while the calls are not counted yet.
	Warmup bool
	// Done and Errors count the calls completed so far (not in warmup).
	Done, Errors int64
	// Elapsed is the time since the measured phase began.
	Elapsed time.Duration
	// Total and Duration repeat the Config's targets, for a progress bar.
	Total    int
	Duration time.Duration
}
