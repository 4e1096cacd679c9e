package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/bench/printer"
	"github.com/oe-rt/oe-rt/internal/container"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// benchOptions are oe-rt bench's flags and arguments.
type benchOptions struct {
	cfg         bench.Config
	address     string
	payload     string
	payloadFile string
	payloadSize string
	format      string
	output      string
	assert      string
	maxMsgSize  int64
	tls         tlsFlags
	schema      schemaFlags
	launch      launchFlags

	runtime []string // RUNTIME and its ARGS, when bench starts it
	image   string   // --image: RUNTIME is a container made from it

	// Filled by check.
	bounds []bench.Bound
}

func newBenchCmd(e *env, runF func(context.Context, *benchOptions) error) *cobra.Command {
	o := &benchOptions{cfg: bench.NewConfig(), maxMsgSize: convention.DefaultMaxMessageSize}
	cmd := &cobra.Command{
		Use:   "bench [flags] (--address HOST:PORT | RUNTIME [-- ARGS...])",
		Short: "Load-test a runtime: throughput, latency percentiles, errors by code",
		Long: `Load-test a function runtime: call one function many times from concurrent
callers and report throughput, latency percentiles (p50, p90, p99, p99.9,
max, from an HDR histogram) and errors by gRPC status code.

Target a running runtime with --address, or name a RUNTIME program (with its
ARGS after --): bench starts it the way conform does, on a free port of
127.0.0.1, waits until it is ready (its gRPC connections open), measures
its peak RSS and threads, and stops it afterwards. A relative RUNTIME is
found under --dir, else in the current directory.

The load is -n calls, or calls for -z; with --rps the calls are paced at a
fixed arrival rate and each call's latency counts from when it was due, so a
runtime that stalls cannot hide it (coordinated omission). --payload-size
with a list (1k,64k,1m) runs once per size. --assert holds the result to
bounds for CI.

Exit status: 0 when the run completed and every --assert bound holds; 1 when
a bound is broken, the runtime could not be reached, or a started runtime
exited; 2 for bad flags, a payload over the send limit, a RUNTIME that could
not be started, a report that could not be written, or an interruption.`,
		Example: `  oe-rt bench --address 127.0.0.1:50051 -c 64 -n 20000
  oe-rt bench --address 127.0.0.1:50051 -z 3s --rps 2000 --payload-size 1k
  oe-rt bench --address 127.0.0.1:50051 --payload-size 1k,64k,1m --format json -o bench.json
  oe-rt bench --assert 'p99<20ms,errors=0,rps>5000' ./bin/myruntime -- -c etc/openedge/service.yml`,
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault // RUNTIME is a file; ARGS are the runtime's
		},
		RunE: runE(o, runF, func(ctx context.Context, o *benchOptions) error { return runBench(ctx, e, o) }, benchFlags),
	}
	f := cmd.Flags()
	f.StringVar(&o.address, "address", "", "`host:port` of a running runtime to load (instead of starting RUNTIME)")
	f.StringVar(&o.image, "image", "", "start the runtime as a container made from `IMAGE` on the Docker engine (DOCKER_HOST), as conform --image does, no limits given; ARGS after -- are its command")
	f.IntVarP(&o.cfg.Concurrency, "concurrency", "c", o.cfg.Concurrency, "number of concurrent callers (at most the number of calls)")
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
	f.DurationVar(&o.cfg.ConnectTimeout, "connect-timeout", o.cfg.ConnectTimeout, "how long to wait for the runtime to be ready (from its start, for a RUNTIME)")
	f.StringVar(&o.format, "format", "text", "report `format`: text or json")
	bindOutput(f, &o.output, "the report")
	f.StringVar(&o.assert, "assert", "", "bounds to hold, e.g. 'p99<20ms,errors=0,rps>5000' (see docs/bench.md); exit 1 when one is broken")
	f.Var(sizeValue{&o.maxMsgSize}, "max-msg-size", "largest response accepted, e.g. 4m; requests may be up to 1.5x this plus 1k (a payload over that is refused)")
	o.schema.bind(f)
	o.tls.bind(f)
	o.launch.bind(f)

	completeFormats(cmd, formatText, formatJSON)
	o.schema.complete(cmd)
	o.tls.complete(cmd)
	_ = cmd.RegisterFlagCompletionFunc("function", cobra.FixedCompletions([]cobra.Completion{"echo", "context", "none", "fail", "sleep"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("dir", cobra.FixedCompletions(nil, cobra.ShellCompDirectiveFilterDirs))
	for _, n := range []string{"address", "concurrency", "total", "duration", "rps", "warmup", "connections", "payload", "payload-size", "timeout", "connect-timeout", "assert", "max-msg-size", "grace"} {
		_ = cmd.RegisterFlagCompletionFunc(n, cobra.NoFileCompletions)
	}
	return cmd
}

// benchFlags maps the fields of bench.Config to their flags, for the
// messages of the configuration errors.
var benchFlags = map[string]string{
	"Concurrency": "concurrency",
	"Connections": "connections",
	"Total":       "total",
	"Duration":    "duration",
	"RPS":         "rps",
	"Warmup":      "warmup",
	"Timeout":     "timeout",
	"Function":    "function",
}

// check checks the command line (the flags' syntax, flags that exclude
// each other, a flag given a value that means "not set" to the library,
// the arguments), one message per flag, and fills o.runtime and o.bounds.
// The rules about values are bench.Config.Validate's (runBench).
func (o *benchOptions) check(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	cfg := &o.cfg
	if err := oneOf(fs, "format", o.format, "text", "json"); err != nil {
		return err
	}
	if err := refuseFormatAsOutput(fs, o.output, "text", "json"); err != nil {
		return err
	}
	if err := o.schema.checkProfile(); err != nil {
		return err
	}
	// -z replaces the default -n; both given is a mistake.
	if fs.Changed("duration") {
		if fs.Changed("total") {
			return usageError("give -n/--total (calls) or -z/--duration (time), not both")
		}
		// -z 0s given is a mistake; to the library a zero Duration is none.
		if err := positive(fs, "duration", cfg.Duration); err != nil {
			return err
		}
		cfg.Total = 0
	}
	if cfg.Total > 0 && cfg.Concurrency > cfg.Total && fs.Changed("concurrency") {
		return usageError("%s %d is more than the %d calls of %s: at most %d callers can have a call in flight",
			flagName(fs, "concurrency"), cfg.Concurrency, cfg.Total, flagName(fs, "total"), cfg.Total)
	}
	// The library reads a zero connect timeout as its default.
	if err := positive(fs, "connect-timeout", cfg.ConnectTimeout); err != nil {
		return err
	}
	if fs.Changed("assert") {
		var err error
		if o.bounds, err = bench.ParseAssert(o.assert); err != nil {
			return usageError("%w", err)
		}
	}
	if err := o.checkPayloads(fs); err != nil {
		return err
	}
	return o.checkRuntime(cmd, args)
}

// checkRuntime checks what is loaded — --address, --image, or a RUNTIME
// and its arguments after -- — and fills o.runtime.
func (o *benchOptions) checkRuntime(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	dash := cmd.ArgsLenAtDash()
	if o.image != "" {
		switch {
		case o.address != "":
			return usageError("give --address or --image, not both")
		case dash != 0 && len(args) > 0:
			return usageError("with --image the image is the runtime: put the container's arguments after --: oe-rt bench --image %s -- %s", o.image, strings.Join(args, " "))
		case fs.Changed("dir"):
			return usageError("--dir does not apply to --image: the image holds the runtime")
		}
		o.runtime = append([]string{o.image}, args...)
		return nil
	}
	switch {
	case o.address != "" && len(args) > 0:
		return usageError("give --address or a RUNTIME to start, not both")
	case o.address != "":
		if err := checkAddress(o.address, "--address"); err != nil {
			return err
		}
		if o.launch.changed(fs) {
			return usageError("--dir and --grace apply to a RUNTIME that bench starts, not to --address")
		}
		for _, b := range o.bounds {
			if b.NeedsRuntime() {
				return usageError("--assert %s needs a RUNTIME started by bench: bench cannot see the resources of a runtime at --address", b.Text)
			}
		}
	case len(args) == 0 || dash == 0:
		return usageError("nothing to load: give --address HOST:PORT or a RUNTIME to start")
	case dash > 1 || (dash < 0 && len(args) > 1):
		return usageError("unexpected argument %q after RUNTIME: a RUNTIME's arguments go after --", args[1])
	default:
		// The library reads a zero grace as its default.
		if err := positive(fs, "grace", o.launch.grace); err != nil {
			return err
		}
		o.runtime = args
	}
	return nil
}

// checkPayloads checks that at most one payload flag is given, and reads it.
func (o *benchOptions) checkPayloads(fs *pflag.FlagSet) error {
	var given []string
	for _, n := range []string{"payload", "payload-file", "payload-size"} {
		if fs.Changed(n) {
			given = append(given, "--"+n)
		}
	}
	if len(given) > 1 {
		return usageError("%s are exclusive: give one", strings.Join(given, " and "))
	}
	switch {
	case fs.Changed("payload"):
		o.cfg.Payloads = []bench.Payload{bench.InlinePayload(o.payload)}
	case fs.Changed("payload-file"):
		p, err := bench.FilePayload(o.payloadFile)
		if err != nil {
			return usageError("--payload-file: %w", err)
		}
		o.cfg.Payloads = []bench.Payload{p}
	case fs.Changed("payload-size"):
		ps, err := bench.ParseSizes(o.payloadSize)
		if err != nil {
			return usageError("--payload-size: %w", err)
		}
		seen := map[int]bool{}
		for _, p := range ps {
			if seen[len(p.Data)] {
				return usageError("--payload-size: size %s given twice", p.Name)
			}
			seen[len(p.Data)] = true
		}
		o.cfg.Payloads = ps
	}
	return nil
}

// config turns the checked options into the run's configuration.
func (o *benchOptions) config(ctx context.Context) (bench.Config, error) {
	cfg := o.cfg
	var err error
	if cfg.Schema, err = o.schema.schema(ctx); err != nil {
		return cfg, err
	}
	if cfg.Dial.TLS, err = o.tls.config(); err != nil {
		return cfg, err
	}
	if cfg.Profile, err = o.schema.parsedProfile(); err != nil {
		return cfg, err
	}
	cfg.Dial.MaxMsgSize = int(o.maxMsgSize)
	if len(o.runtime) > 0 {
		cfg.Launch = &bench.Launch{Command: o.runtime, Dir: o.launch.dir, Grace: o.launch.grace}
	} else {
		cfg.Address = o.address
	}
	return cfg, nil
}

func runBench(ctx context.Context, e *env, o *benchOptions) error {
	cfg, err := o.config(ctx)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err // before anything is written
	}
	if cfg.Launch != nil {
		_ = launch.EnableSubreaper() // orphans of the runtime come back to bench, to be ended
	}
	if o.image != "" {
		l, err := container.New(ctx, container.Options{Image: o.image})
		if err != nil {
			return usageError("bench --image: %w", err)
		}
		defer l.Close() // the container and the network, however the run ends
		cfg.Launch.Launcher = l
	}
	out, err := openOutput(o.output, e.stdout)
	if err != nil {
		return err
	}
	defer out.close()
	// Progress goes to standard error: a line redrawn on a terminal, a
	// plain line every few seconds elsewhere (a CI log).
	var progress *printer.ProgressLine
	if isTerminal(e.stderr) {
		progress = printer.NewProgressLine(e.stderr)
		cfg.Progress = progress.Update
	} else {
		cfg.Progress = printer.NewProgressLog(e.stderr, progressEvery).Update
	}
	rep, runErr := bench.Run(ctx, cfg)
	if progress != nil {
		progress.Clear()
	}
	if rep != nil {
		if err := o.writeReport(out, rep); err != nil {
			return err
		}
	}
	if runErr != nil {
		return fmt.Errorf("bench: %w", runErr) // typed by bench: exitCode maps it
	}
	if vs := bench.Check(rep, o.bounds); len(vs) > 0 {
		_ = printer.Violations(e.stderr, vs)
		return failure(fmt.Errorf("%d of %d --assert bounds broken", len(vs), len(o.bounds)))
	}
	return nil
}

// progressEvery is how often bench writes a progress line where it cannot
// redraw one.
var progressEvery = 5 * time.Second

// writeReport writes the report in --format.
func (o *benchOptions) writeReport(out *output, rep *bench.Report) error {
	write := printer.Text
	if o.format == "json" {
		write = printer.JSON
	}
	if err := write(out, rep); err != nil {
		return writeFailed("report", err)
	}
	return writeFailed("report", out.close())
}

// launchFlags are the flags of a RUNTIME that bench starts.
type launchFlags struct {
	dir   string
	grace time.Duration
}

func (l *launchFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&l.dir, "dir", "", "working `directory` of a RUNTIME that bench starts, where a relative RUNTIME is found first (default: the current one)")
	fs.DurationVar(&l.grace, "grace", 10*time.Second, "how long a started RUNTIME may take to exit after SIGTERM before SIGKILL")
}

func (l *launchFlags) changed(fs *pflag.FlagSet) bool {
	return fs.Changed("dir") || fs.Changed("grace")
}
