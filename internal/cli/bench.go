package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/bench/printer"
	"github.com/oe-rt/oe-rt/internal/convention"
)

func init() { register(newBenchCmd) }

type benchOptions struct {
	cfg         bench.Config
	address     string
	payload     string
	payloadFile string
	payloadSize string
	format      string
	assert      string
	maxMsgSize  int64
	tls         tlsFlags
	schema      schemaFlags
	launch      launchFlags
}

func newBenchCmd(e *env) *cobra.Command {
	o := &benchOptions{cfg: bench.NewConfig(), maxMsgSize: convention.DefaultMaxMessageSize}
	cmd := &cobra.Command{
		Use:   "bench [flags] (--address HOST:PORT | RUNTIME [-- ARGS...])",
		Short: "Load-test a runtime: throughput, latency percentiles, errors by code",
		Long: `Load-test a function runtime: call one function many times from concurrent
callers and report throughput, latency percentiles (p50, p90, p99, p99.9,
max, from an HDR histogram) and errors by gRPC status code.

Target a running runtime with --address, or name a RUNTIME program (with its
ARGS after --): bench starts it the way conform does, on a free port of
127.0.0.1, waits for it to answer, measures its peak RSS and threads, and
stops it afterwards.

The load is -n calls, or calls for -z; with --rps the calls are paced at a
fixed arrival rate and each call's latency counts from when it was due, so a
runtime that stalls cannot hide it (coordinated omission). --payload-size
with a list (1k,64k,1m) runs once per size. --assert holds the result to
bounds for CI and exits 1 when one is broken.`,
		Example: `  oe-rt bench --address 127.0.0.1:50051 -c 64 -n 100000
  oe-rt bench --address 127.0.0.1:50051 -z 30s --rps 2000 --payload-size 1k
  oe-rt bench --address 127.0.0.1:50051 --payload-size 1k,64k,1m --format json
  oe-rt bench --assert 'p99<20ms,errors=0,rps>5000' ./bin/myruntime -- -c etc/openedge/service.yml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd, e, o, args)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&o.address, "address", "", "`host:port` of a running runtime to load (instead of starting RUNTIME)")
	f.IntVarP(&o.cfg.Concurrency, "concurrency", "c", o.cfg.Concurrency, "number of concurrent callers")
	f.IntVarP(&o.cfg.Total, "total", "n", o.cfg.Total, "number of calls (per payload); exclusive with -z")
	f.DurationVarP(&o.cfg.Duration, "duration", "z", 0, "call for this long (per payload) instead of -n calls, e.g. 30s")
	f.Float64Var(&o.cfg.RPS, "rps", 0, "fixed arrival rate in calls/s, latency measured from each call's intended start (0: as fast as the callers go)")
	f.DurationVar(&o.cfg.Warmup, "warmup", 0, "call for this long before measuring (per payload), e.g. 2s")
	f.IntVar(&o.cfg.Connections, "connections", o.cfg.Connections, "number of gRPC connections the callers share")
	f.StringVar(&o.cfg.Function, "function", o.cfg.Function, "FunctionName of the calls")
	f.StringVar(&o.payload, "payload", "", "payload of every call, as given")
	f.StringVar(&o.payloadFile, "payload-file", "", "read the payload from this `file`")
	f.StringVar(&o.payloadSize, "payload-size", "", "random payload of this many bytes (512, 1k, 1m), or a sweep: 1k,64k,1m")
	f.DurationVar(&o.cfg.Timeout, "timeout", o.cfg.Timeout, "deadline of each call (0: none)")
	f.DurationVar(&o.cfg.ConnectTimeout, "connect-timeout", o.cfg.ConnectTimeout, "how long to wait for the runtime to accept connections")
	f.StringVar(&o.format, "format", "text", "output `format`: text or json")
	f.StringVar(&o.assert, "assert", "", "bounds to hold, e.g. 'p99<20ms,errors=0,rps>5000' (see docs/bench.md); exit 1 when one is broken")
	f.Var(sizeValue{&o.maxMsgSize}, "max-msg-size", "largest message to send or receive, e.g. 4m or 4194304")
	o.schema.add(f)
	o.tls.add(f)
	o.launch.add(f)
	return cmd
}

func runBench(cmd *cobra.Command, e *env, o *benchOptions, args []string) error {
	cfg := o.cfg
	flags := cmd.Flags()
	if o.format != "text" && o.format != "json" {
		return usageError("--format %q: want text or json", o.format)
	}
	// -z replaces the default -n; both given is a mistake.
	if flags.Changed("duration") {
		if flags.Changed("total") {
			return usageError("give -n (calls) or -z (duration), not both")
		}
		cfg.Total = 0
	}
	if cfg.Duration < 0 || cfg.Warmup < 0 || cfg.Timeout < 0 || cfg.ConnectTimeout <= 0 {
		return usageError("-z, --warmup and --timeout must not be negative, --connect-timeout must be positive")
	}
	var bounds []bench.Bound
	if flags.Changed("assert") {
		var err error
		if bounds, err = bench.ParseAssert(o.assert); err != nil {
			return usageError("%w", err)
		}
	}
	payloads, err := o.payloads(flags.Changed)
	if err != nil {
		return err
	}
	cfg.Payloads = payloads
	if cfg.Schema, err = o.schema.schema(cmd.Context()); err != nil {
		return err
	}
	cfg.Dial.TLS = o.tls.config()
	cfg.Dial.MaxMsgSize = int(o.maxMsgSize)

	dash := cmd.ArgsLenAtDash()
	switch {
	case o.address != "" && len(args) > 0:
		return usageError("give --address or a RUNTIME to start, not both")
	case o.address != "":
		cfg.Address = o.address
		if o.launch.changed(flags.Changed) {
			return usageError("--dir and --grace apply to a RUNTIME that bench starts, not to --address")
		}
		for _, b := range bounds {
			if b.NeedsRuntime() {
				return usageError("--assert %s needs a RUNTIME started by bench: bench cannot see the resources of a runtime at --address", b.Text)
			}
		}
	case len(args) == 0 || dash == 0:
		return usageError("nothing to load: give --address HOST:PORT or a RUNTIME to start")
	default:
		extra := args[1:]
		if dash > 1 {
			return usageError("unexpected argument %q before --: a RUNTIME's arguments go after --", args[1])
		}
		start, err := o.launch.starter(args[0], extra, o.schema.profile)
		if err != nil {
			return err
		}
		cfg.Start = start
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%w", err)
	}

	var progress *printer.ProgressLine
	if isTerminal(e.stderr) {
		progress = printer.NewProgressLine(e.stderr)
		cfg.Progress = progress.Update
	}
	rep, runErr := bench.Run(cmd.Context(), cfg)
	if progress != nil {
		progress.Clear()
	}
	if rep != nil {
		write := printer.Text
		if o.format == "json" {
			write = printer.JSON
		}
		if err := write(e.stdout, rep); err != nil {
			return &ExitError{Code: ExitFailure, Err: fmt.Errorf("write report: %w", err)}
		}
	}
	if runErr != nil {
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("bench: %w", runErr)}
	}
	if vs := bench.Check(rep, bounds); len(vs) > 0 {
		_ = printer.Violations(e.stderr, vs)
		return &ExitError{Code: ExitFailure, Err: fmt.Errorf("%d of %d --assert bounds broken", len(vs), len(bounds))}
	}
	return nil
}

// payloads reads the one payload flag given, if any.
func (o *benchOptions) payloads(changed func(string) bool) ([]bench.Payload, error) {
	var given []string
	for _, n := range []string{"payload", "payload-file", "payload-size"} {
		if changed(n) {
			given = append(given, "--"+n)
		}
	}
	if len(given) > 1 {
		return nil, usageError("%s are exclusive: give one", strings.Join(given, " and "))
	}
	switch {
	case changed("payload"):
		return []bench.Payload{bench.InlinePayload(o.payload)}, nil
	case changed("payload-file"):
		p, err := bench.FilePayload(o.payloadFile)
		if err != nil {
			return nil, usageError("--payload-file: %w", err)
		}
		return []bench.Payload{p}, nil
	case changed("payload-size"):
		ps, err := bench.ParseSizes(o.payloadSize)
		if err != nil {
			return nil, usageError("--payload-size: %w", err)
		}
		seen := map[int]bool{}
		for _, p := range ps {
			if seen[len(p.Data)] {
				return nil, usageError("--payload-size: size %s given twice", p.Name)
			}
			seen[len(p.Data)] = true
		}
		return ps, nil
	}
	return nil, nil
}

// isTerminal reports whether w is a terminal (a character device), where a
// progress line that redraws itself makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// launchFlags are the flags of a RUNTIME that bench starts.
type launchFlags struct {
	dir   string
	grace time.Duration
}

func (l *launchFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&l.dir, "dir", "", "working `directory` of a RUNTIME that bench starts (default: the current one)")
	fs.DurationVar(&l.grace, "grace", 10*time.Second, "how long a started RUNTIME may take to exit after SIGTERM before SIGKILL")
}

func (l *launchFlags) changed(changed func(string) bool) bool {
	return changed("dir") || changed("grace")
}
