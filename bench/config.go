package bench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
	"github.com/oe-rt/oe-rt/internal/size"
)

// Config describes one load test. NewConfig returns the defaults; the command
// layer binds its flags onto the fields.
type Config struct {
	// Address is the runtime to load (host:port). Either Address or Launch
	// must be set.
	Address string
	// Launch, when Address is empty, is the runtime Run starts before the
	// run, loads, and stops afterwards.
	Launch *Launch
	// Profile chooses the default Schema and, for a runtime bench starts,
	// the variables it is given its address and name in ("" = openedge).
	Profile convention.Profile

	// Schema is the Call method and message types (nil means the
	// profile's: client.OpenEdge() or client.Baetyl()).
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
	// (default 10s), from the runtime's exec when bench starts it.
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
		Profile:          convention.ProfileOpenEdge,
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
	err := c.validate()
	if err == nil {
		return nil
	}
	if ce, ok := err.(*ConfigError); ok {
		return ce
	}
	return &ConfigError{Err: err}
}

func (c *Config) validate() error {
	switch {
	case c.Address == "" && c.Launch == nil:
		return errors.New("no runtime: give an address or a runtime to start")
	case c.Address != "" && c.Launch != nil:
		return errors.New("give an address or a runtime to start, not both")
	case c.Launch != nil && (len(c.Launch.Command) == 0 || c.Launch.Command[0] == ""):
		return errors.New("no runtime program to start")
	case c.Launch != nil && c.Launch.Grace < 0:
		return fmt.Errorf("grace period must not be negative, got %s", c.Launch.Grace)
	case c.Function == "":
		return &ConfigError{Field: "Function", Problem: "must not be empty", Err: errors.New("function name is empty")}
	case c.Concurrency < 1:
		return fieldError("Concurrency", "concurrency", "must be at least 1, got %d", c.Concurrency)
	case c.Connections < 1:
		return fieldError("Connections", "connections", "must be at least 1, got %d", c.Connections)
	case c.Connections > c.Concurrency:
		return &ConfigError{Field: "Connections", Problem: fmt.Sprintf("%d is more than the %d callers of {Concurrency}", c.Connections, c.Concurrency),
			Err: fmt.Errorf("connections (%d) cannot exceed concurrency (%d)", c.Connections, c.Concurrency)}
	case c.Total < 0 && c.Duration == 0:
		return &ConfigError{Field: "Total", Problem: fmt.Sprintf("must be at least 1, got %d", c.Total),
			Err: fmt.Errorf("number of calls must not be negative, got %d", c.Total)}
	case c.Total < 0:
		return fieldError("Total", "number of calls", "must not be negative, got %d", c.Total)
	case c.Duration < 0:
		return fieldError("Duration", "duration", "must not be negative, got %s", c.Duration)
	case c.Total > 0 && c.Duration > 0:
		return errors.New("give a number of calls or a duration, not both")
	case c.Total == 0 && c.Duration == 0:
		return &ConfigError{Field: "Total", Problem: "must be at least 1, got 0", Err: errors.New("give a number of calls or a duration")}
	case math.IsNaN(c.RPS) || math.IsInf(c.RPS, 0):
		return &ConfigError{Field: "RPS", Problem: fmt.Sprintf("must be a finite number of calls per second, 0 or more, got %g", c.RPS),
			Err: fmt.Errorf("rps must be a finite number of calls per second, got %g", c.RPS)}
	case c.RPS < 0:
		return &ConfigError{Field: "RPS", Problem: fmt.Sprintf("must be a finite number of calls per second, 0 or more, got %g", c.RPS),
			Err: fmt.Errorf("rps must not be negative, got %g", c.RPS)}
	case c.Warmup < 0:
		return fieldError("Warmup", "warmup", "must not be negative, got %s", c.Warmup)
	case c.Timeout < 0:
		return fieldError("Timeout", "timeout", "must not be negative, got %s", c.Timeout)
	}
	if c.Profile != "" {
		if _, err := convention.ParseProfile(string(c.Profile)); err != nil {
			return err
		}
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
type ConfigError struct {
	// Field, when the problem is one field's, names it (e.g.
	// "Concurrency"), and Problem says what is wrong with its value in
	// words that follow the field's name ("must be at least 1, got 0"),
	// so that a command line can name its flag instead. Another field the
	// problem names is written {Field} ("is more than the 2 callers of
	// {Concurrency}"), for the command line to name its flag too.
	Field, Problem string
	Err            error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// fieldError is a *ConfigError of one field: the message is the subject
// followed by the problem.
func fieldError(field, subject, format string, a ...any) *ConfigError {
	problem := fmt.Sprintf(format, a...)
	return &ConfigError{Field: field, Problem: problem, Err: errors.New(subject + " " + problem)}
}

// StartError is a runtime that Config.Launch could not start: its
// program could not be found or run (it matches launch.ErrStart then), or
// the launcher failed.
type StartError struct{ Err error }

func (e *StartError) Error() string { return "start runtime: " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// Launch says how bench starts the runtime it loads: as conform does (see
// internal/runtimeproc), on a free port of 127.0.0.1 given in the
// profile's variables, in its own process group; every process it starts
// is gone when Run returns.
type Launch struct {
	// Command is the runtime program and its arguments. A relative program
	// path (one with a slash) is found under Dir, else in the current
	// directory; a name without a slash is looked up in PATH.
	Command []string
	// Dir is the runtime's working directory ("" = the current one).
	Dir string
	// Env adds variables (K=V) to its environment.
	Env []string
	// Grace is how long it may take to exit after SIGTERM before SIGKILL
	// (0 = 10s).
	Grace time.Duration
	// Launcher starts it; nil means natively. With a container launcher
	// (oe-rt bench --image), Command[0] names the image and Command[1:]
	// are the container's command.
	Launcher runtimeproc.Launcher `json:"-"`
}

// FewSamples: a peak thread count from fewer samples is reported as
// such (the memory peak is the kernel's own high-water mark).
const FewSamples = 10

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
