package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/conformance/printer"
	"github.com/oe-rt/oe-rt/internal/container"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/internal/shellquote"
)

// conformOptions are oe-rt conform's flags and arguments.
type conformOptions struct {
	cfg          *conformance.Config
	schema       schemaFlags
	functions    []string
	run, skip    []string
	list         bool
	explain      string
	baseline     string
	update       string
	format       string
	output       string
	junit        string
	json         string
	markdown     string
	annotations  string
	verbose      bool
	limitMemory  int64
	limitThreads int
	threadsGiven bool // --limit-threads was given
	image        string
	limitSwap    int64
	limitCPUs    float64

	command []string // RUNTIME and its ARGS; empty: the reference runtime
}

func newConformCmd(e *env, runF func(context.Context, *conformOptions) error) *cobra.Command {
	o := &conformOptions{cfg: conformance.NewConfig()}
	cmd := &cobra.Command{
		Use:   "conform [flags] [RUNTIME [-- ARGS...]]",
		Short: "Check a runtime against the convention",
		Long: `Run the conformance suite: start RUNTIME (with ARGS) as the master starts an
instance for the function manager — on a free port of 127.0.0.1, with the
master's environment (--profile: OpenEdge 0.1.2's or Baetyl's), in a working
directory laid out as the master's that shows --dir, with the configuration
given by --config at etc/<profile>/service.yml and no -c — exercise Call,
check graceful shutdown and resources, and report check by check.

With --image IMAGE it runs every instance as a container made from IMAGE
on the Docker engine at DOCKER_HOST, as the master's docker mode does
(0.0.0.0:50051, the configuration at /etc/<profile>/service.yml, the limits
always enforced); ARGS after -- are the container's command.

Without RUNTIME it checks oe-rt's own reference runtime (oe-rt serve).
The runtime must serve the fixture functions echo, context, none, fail and
sleep (see docs/conformance.md); checks that need a missing one are not
run, and a MUST check that did not run fails the run.

Exit status: 0 (PASSED) when every selected MUST check ran and passed (with
--strict, every selected check), 1 (FAILED) when not, 2 for usage errors,
when the harness could not run a check (ERROR), when a report could not be
written, or when interrupted (INTERRUPTED: SIGINT, SIGTERM).
With --baseline the exit status follows the verdict against the baseline:
only regressions, new checks and checks that did not run fail the run.`,
		Example: `  oe-rt conform
  oe-rt conform ./bin/myruntime -- -c etc/openedge/service.yml
  oe-rt conform --profile baetyl --config etc/openedge/service.yml ./bin/myruntime   # as the Baetyl master starts it
  oe-rt conform --strict --format junit -o report.xml ./bin/myruntime
  oe-rt conform --junit report.xml --json report.json ./bin/myruntime   # text on screen, JUnit and JSON to files
  oe-rt conform --profile baetyl --run 'call.*,echo.*' ./bin/myruntime
  oe-rt conform --list
  oe-rt conform --explain shutdown.drain
  oe-rt conform --update-baseline conform-baseline.json ./bin/myruntime   # once: record today's state
  oe-rt conform --baseline conform-baseline.json ./bin/myruntime          # in CI: fail on regressions only
  oe-rt conform --repeat 5 ./bin/myruntime                                 # find flaky checks`,
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault // RUNTIME is a file; ARGS are the runtime's
		},
		RunE: runE(o, runF, func(ctx context.Context, o *conformOptions) error { return runConform(ctx, e, o) }, conformFlags),
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// An unknown flag after RUNTIME is most likely the runtime's own.
		var ne *pflag.NotExistError
		if errors.As(err, &ne) {
			return usageError("%w\nThe runtime's own flags go after --: oe-rt conform [flags] RUNTIME -- ARGS...\nRun 'oe-rt conform --help' for usage.", err)
		}
		return flagError(c, err)
	})
	o.bind(cmd.Flags())
	cmd.AddCommand(newReferenceCmd())

	o.complete(cmd)
	return cmd
}

// conformFlags maps the fields of conformance.Config to their flags, for
// the messages of the configuration errors.
var conformFlags = map[string]string{
	"StartTimeout": "start-timeout",
	"Grace":        "grace",
	"Repeat":       "repeat",
	"ThreadLimit":  "limit-threads",
	"Functions":    "function",
	"Run":          "run",
	"Skip":         "skip",
	"Soak":         "soak",
	"Env":          "env",
}

// bind binds conform's flags onto o.
func (o *conformOptions) bind(f *pflag.FlagSet) {
	f.StringVar(&o.schema.profile, "profile", "openedge", "`profile`: openedge (OPENEDGE_SERVICE_ADDRESS, openedge.Function) or baetyl (BAETYL_SERVICE_INSTANCE_ADDRESS, baetyl.Function)")
	f.StringVar(&o.schema.proto, "proto", "", "the runtime's own .proto `file`, parsed at run time")
	f.StringVar(&o.schema.service, "service", "", "the service to call, e.g. acme.Function: from --proto, or else from the runtime's server reflection")
	f.StringArrayVar(&o.cfg.Env, "env", nil, "add `K=V` to the runtime's environment (repeatable; not the address and name variables, which the harness sets)")
	f.StringVar(&o.cfg.Dir, "dir", "", "working `directory` of the runtime")
	f.StringVar(&o.cfg.ConfigFile, "config", "", "give the runtime this configuration `file` as the master does: at etc/<profile>/service.yml in its working directory, with no -c")
	f.DurationVar(&o.cfg.StartTimeout, "start-timeout", o.cfg.StartTimeout, "how long the runtime may take to answer its first call")
	f.DurationVar(&o.cfg.Grace, "grace", o.cfg.Grace, "how long the runtime may take to exit after SIGTERM")
	f.StringArrayVar(&o.functions, "function", nil, "serve a fixture role under another name: `ROLE=NAME` (repeatable)")
	f.StringSliceVar(&o.run, "run", nil, "run only these `IDS` (comma-separated IDs or prefix.*)")
	f.StringSliceVar(&o.skip, "skip", nil, "skip these `IDS` (comma-separated IDs or prefix.*)")
	f.BoolVar(&o.cfg.Strict, "strict", false, "a failed SHOULD check fails the run")
	f.BoolVar(&o.list, "list", false, "print the check catalog and exit")
	f.StringVar(&o.explain, "explain", "", "print the page of check `ID` (its rule, why it exists, how it is measured, how to fix it) and exit")
	f.StringVar(&o.format, "format", "text", "report `format`: text, json or junit (--list: text or json)")
	bindOutput(f, &o.output, "the report")
	f.StringVar(&o.junit, "junit", "", "also write a JUnit report to `FILE`")
	f.StringVar(&o.json, "json", "", "also write a JSON report to `FILE`")
	f.StringVar(&o.markdown, "markdown", "", "also write a Markdown summary (a table of the checks) to `FILE`, e.g. $GITHUB_STEP_SUMMARY")
	f.StringVar(&o.annotations, "annotations", "", "also write to `FILE` a GitHub Actions command (::error title=ID::cause and hint) per check that did not pass")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log the harness's steps (runtime started, each check's result) to standard error")
	f.Var(sizeValue{&o.limitMemory}, "limit-memory", "enforce this memory limit on every instance, each in a cgroup of its own, e.g. 50m (root, or a delegated cgroup v2; with --image the container's, default 50M)")
	f.IntVar(&o.limitThreads, "limit-threads", 0, "enforce this thread limit (pids.max) on every instance, each in a cgroup of its own, e.g. 20 (root, or a delegated cgroup v2; with --image the container's pids limit, default 20)")
	f.StringVar(&o.image, "image", "", "run every instance as a container made from `IMAGE` on a Docker engine (DOCKER_HOST), as the master's docker mode runs it; ARGS after -- are the container's command (docs/conformance.md#container-mode)")
	f.Var(sizeValue{&o.limitSwap}, "limit-swap", "with --image: the container's memory plus swap, Docker's --memory-swap, e.g. 100m (default: unset, as the master leaves it: the engine then allows twice --limit-memory)")
	f.Float64Var(&o.limitCPUs, "limit-cpus", 0, "with --image: the container's CPU quota in `CPUs`, e.g. 0.5 (default: none)")
	f.StringVar(&o.baseline, "baseline", "", "judge the run against an earlier JSON report `FILE`: fail only on regressions, list known failures")
	f.StringVar(&o.update, "update-baseline", "", "write this run's JSON report to `FILE`, as the baseline for later runs")
	f.IntVar(&o.cfg.Repeat, "repeat", 1, "run the suite `N` times, with fresh instances each time, and report flaky checks")
	f.Uint64Var(&o.cfg.Seed, "seed", 0, "draw the sweep's payloads (echo.sweep, echo.json-integers) from seed `N`, as a report printed it, to replay them exactly (default: a new seed each run)")
	f.DurationVar(&o.cfg.Soak, "soak", 0, "make the long life go on for `DURATION` (at least 1,000 calls on one instance, the same oracles and leak checks); the run's time bound grows by as much")
}

// complete wires the completion of conform's flags.
func (o *conformOptions) complete(cmd *cobra.Command) {
	completeFormats(cmd, formatText, formatJSON, formatJUnit)
	o.schema.complete(cmd)
	_ = cmd.RegisterFlagCompletionFunc("run", completeList(checkSelectors))
	_ = cmd.RegisterFlagCompletionFunc("skip", completeList(checkSelectors))
	_ = cmd.RegisterFlagCompletionFunc("explain", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, c := range conformance.Catalog() {
			out = append(out, cobra.CompletionWithDesc(c.ID, string(c.Level)+": "+c.Describe(nil)))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("dir", cobra.FixedCompletions(nil, cobra.ShellCompDirectiveFilterDirs))
	_ = cmd.RegisterFlagCompletionFunc("function", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, r := range conformance.Roles {
			out = append(out, r+"=")
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	_ = cmd.RegisterFlagCompletionFunc("env", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
	for _, n := range []string{"start-timeout", "grace", "limit-memory", "limit-threads", "limit-swap", "limit-cpus", "image", "seed"} {
		_ = cmd.RegisterFlagCompletionFunc(n, cobra.NoFileCompletions)
	}
}

// check checks the command line (the flags' syntax, flags that exclude
// each other, the arguments) and fills o.command; every error is a usage
// error that names the flag or argument at fault. The rules about values
// are conformance.Config.Validate's (runConform).
func (o *conformOptions) check(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	if o.list {
		if len(args) > 0 {
			return usageError("--list takes no RUNTIME")
		}
		return oneOf(fs, "format", o.format, "text", "json")
	}
	if o.explain != "" {
		if len(args) > 0 {
			return usageError("--explain takes no RUNTIME")
		}
		return nil
	}
	// --seed 0 given is a mistake; to the library a zero Seed picks one.
	if fs.Changed("seed") && o.cfg.Seed == 0 {
		return usageError("%s must be at least 1 (leave it out for a new seed)", flagName(fs, "seed"))
	}
	// --repeat 0 given is a mistake; to the library a zero Repeat is once.
	if err := atLeast(fs, "repeat", o.cfg.Repeat, 1); err != nil {
		return err
	}
	if err := oneOf(fs, "format", o.format, "text", "json", "junit"); err != nil {
		return err
	}
	if err := o.schema.checkProfile(); err != nil {
		return err
	}
	o.threadsGiven = fs.Changed("limit-threads") // Validate judges its value
	for _, kv := range o.functions {
		if _, name, ok := strings.Cut(kv, "="); !ok || name == "" {
			return usageError("--function %q: want ROLE=NAME, e.g. echo=my-echo", kv)
		}
	}
	if err := refuseFormatAsOutput(fs, o.output, "text", "json", "junit"); err != nil {
		return err
	}
	files := []struct{ flag, path string }{{"-o/--output", o.output}, {"--junit", o.junit}, {"--json", o.json}, {"--markdown", o.markdown}, {"--annotations", o.annotations}, {"--update-baseline", o.update}}
	for i, a := range files {
		for _, b := range files[i+1:] {
			if a.path != "" && b.path != "" && sameFile(a.path, b.path) {
				return usageError("%s and %s name the same file %s: one report would overwrite the other", a.flag, b.flag, a.path)
			}
		}
	}
	return o.checkRuntime(cmd, args)
}

// checkRuntime checks the runtime — --image, or a RUNTIME with its
// arguments after -- (none: the reference runtime) — and fills o.command.
func (o *conformOptions) checkRuntime(cmd *cobra.Command, args []string) error {
	fs := cmd.Flags()
	dash := cmd.ArgsLenAtDash()
	if o.image != "" {
		// The image is the runtime: what follows -- is its command.
		switch {
		case dash != 0 && len(args) > 0:
			return usageError("with --image the image is the runtime: put the container's arguments after --: oe-rt conform --image %s -- %s", shellquote.Quote(o.image), shellquote.Join(args))
		case o.limitCPUs < 0:
			return usageError("--limit-cpus %v: want a positive number of CPUs", o.limitCPUs)
		}
		o.command = append([]string{o.image}, args...)
		return nil
	}
	for _, n := range []string{"limit-swap", "limit-cpus"} {
		if fs.Changed(n) {
			return usageError("--%s needs --image: natively the limits are --limit-memory and --limit-threads", n)
		}
	}
	switch {
	case dash == 0:
		return usageError("ARGS after -- need a RUNTIME before it")
	case dash < 0 && len(args) > 1:
		return usageError("put the runtime's arguments after --: oe-rt conform %s -- %s", shellquote.Quote(args[0]), shellquote.Join(args[1:]))
	case dash > 1:
		return usageError("unexpected argument %q before --: the runtime's arguments go after --", args[1])
	}
	o.command = args
	return nil
}

// sameFile reports whether two paths name the same file: the same path once
// made absolute, or the same existing file.
func sameFile(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err1 == nil && err2 == nil && aa == bb {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// config turns the checked options into the suite's configuration.
func (o *conformOptions) config(ctx context.Context) (*conformance.Config, error) {
	cfg := o.cfg
	cfg.Command = o.command
	if len(cfg.Command) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, usageError("find the reference runtime: %w", err)
		}
		cfg.Command = []string{self, "serve", "--log-level", "warn"}
	}
	profile, err := o.schema.parsedProfile()
	if err != nil {
		return nil, err
	}
	cfg.Profile = profile
	// --service without --proto: the descriptor comes from the runtime's
	// server reflection once it is up.
	sf := o.schema
	if sf.proto == "" {
		sf.service = ""
		cfg.Service = o.schema.service
	}
	schema, err := sf.schema(ctx)
	if err != nil {
		return nil, err
	}
	if sf.proto != "" {
		cfg.Schema = schema
		cfg.ProtoFile = sf.proto
	}
	cfg.Functions = map[string]string{}
	for _, kv := range o.functions {
		role, name, _ := strings.Cut(kv, "=")
		cfg.Functions[role] = name
	}
	cfg.Run, cfg.Skip = o.run, o.skip
	self, err := os.Executable()
	if err != nil {
		return nil, usageError("find oe-rt's own executable: %w", err)
	}
	cfg.Reference = []string{self, "conform", referenceCmd}
	if o.baseline != "" {
		b, err := conformance.ReadBaseline(o.baseline)
		if err != nil {
			return nil, usageError("--baseline: %w", err)
		}
		cfg.Baseline = b
	}
	if Version != "dev" {
		cfg.OeRtVersion = Version
	}
	if o.limitMemory > 0 || o.threadsGiven || o.image != "" {
		cfg.CgroupLimits = true
	}
	lim := o.limits()
	cfg.MemoryLimit, cfg.ThreadLimit = lim.MemoryLimit, lim.ThreadLimit
	if o.threadsGiven {
		cfg.ThreadLimit = o.limitThreads // Validate refuses one below 1
	}
	return cfg, nil
}

// limits returns the configuration with the limits of the flags
// (--limit-memory, --limit-threads, --grace, --start-timeout), as --list and
// --explain describe the checks with them.
func (o *conformOptions) limits() *conformance.Config {
	c := *o.cfg
	if o.limitMemory > 0 {
		c.MemoryLimit = o.limitMemory
	}
	if o.limitThreads > 0 {
		c.ThreadLimit = o.limitThreads
	}
	return &c
}

func runConform(ctx context.Context, e *env, o *conformOptions) error {
	if o.list || o.explain != "" {
		return o.describe(e)
	}
	cfg, err := o.config(ctx)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err // before anything is written
	}
	var log *slog.Logger
	if o.verbose {
		log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cfg.Logger = log
	}
	// Orphans of the runtime come back to us, so that they can be found
	// and ended.
	_ = launch.EnableSubreaper()
	if o.image != "" {
		l, err := container.New(ctx, container.Options{Image: o.image, Memory: cfg.MemoryLimit, MemorySwap: o.limitSwap,
			Pids: int64(cfg.ThreadLimit), CPUs: o.limitCPUs, Logger: log})
		if err != nil {
			return usageError("conform --image: %w", err)
		}
		defer l.Close() // every container and the network, however Run ends
		cfg.Launcher = l
	}

	out, err := openOutput(o.output, e.stdout)
	if err != nil {
		return err
	}
	defer out.close()
	text := printer.Text{Color: e.colorOK(out.w), Verbose: o.verbose, Width: termWidth(out.w)}
	live := o.format == "text" && isTerminal(out.w)
	watch(cfg, out, text, live, log)
	// Payload files for the reproduce lines go beside the report written
	// to a file; otherwise into a temporary directory, made only when a
	// line needs one.
	if report := firstNonEmpty(o.output, o.junit, o.json, o.markdown); report != "" {
		cfg.ArtifactDir = strings.TrimSuffix(report, filepath.Ext(report)) + ".payloads"
	}
	if log != nil {
		log.Info("conform starting", "runtime", shellquote.Join(cfg.Command), "dir", cfg.Dir, "profile", string(cfg.Profile),
			"checks", len(cfg.Selected()), "start_timeout", cfg.StartTimeout, "grace", cfg.Grace, "strict", cfg.Strict)
	}
	rep, err := conformance.Run(ctx, cfg)
	if rep == nil {
		// Run's contract: the harness could not run at all.
		return usageError("conform: %w", err)
	}
	if log != nil {
		log.Info("conform done", "verdict", string(rep.Verdict), "pass", rep.Counts.Pass, "fail", rep.Counts.Fail, "warn", rep.Counts.Warn, "not_run", rep.Counts.Skip, "error", rep.Counts.Error, "duration", rep.Duration)
	}
	if err := o.writeReports(out, text, live, rep); err != nil {
		return err
	}
	if o.update != "" {
		if err := writeBaseline(o.update, rep); err != nil {
			return usageError("%w", err)
		}
	}
	if gate := rep.Gate(); gate != conformance.Passed {
		return &verdictError{gate: gate, reason: rep.Reason} // exitCode maps the gate
	}
	return nil
}

// describe prints what --list or --explain ask for: the catalog, or a
// check's page, with the limits of the flags.
func (o *conformOptions) describe(e *env) error {
	if o.list {
		return writeFailed("the catalog", printCatalog(e.stdout, o.limits(), o.format == "json"))
	}
	page, err := conformance.Explain(o.explain, o.limits())
	if err != nil {
		return usageError("--explain: %w", err)
	}
	_, err = io.WriteString(e.stdout, page)
	return writeFailed("the explain page", err)
}

// watch sets cfg's callbacks: each check's result to the log, and, live
// (text on a terminal), each result (or, with --repeat, each run's
// summary) to out as it comes.
func watch(cfg *conformance.Config, out *output, text printer.Text, live bool, log *slog.Logger) {
	var mu sync.Mutex
	if live {
		fmt.Fprintf(out, "oe-rt conform: %s\n", shellquote.Join(cfg.Command))
	}
	cfg.OnResult = func(r conformance.Result) {
		mu.Lock()
		defer mu.Unlock()
		if log != nil {
			log.Info("check done", "id", r.ID, "level", string(r.Level), "status", string(r.Status), "duration", r.Duration, "message", r.Message)
		}
		if live && cfg.Repeat <= 1 {
			text.Result(out, r)
		}
	}
	if live && cfg.Repeat > 1 {
		cfg.OnRun = func(s conformance.RunSummary) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "run %d of %d: %s in %.2fs %s\n", s.N, cfg.Repeat, strings.ToUpper(string(s.Verdict)), s.WallMS/1000, printer.Escape(s.Reason))
		}
	}
}

// writeReports writes the report in --format to out (the summary only,
// when the results were shown live), and the reports of --junit, --json,
// --markdown and --annotations.
func (o *conformOptions) writeReports(out *output, text printer.Text, live bool, rep *conformance.Report) error {
	var buf bytes.Buffer
	switch {
	case o.format == "json":
		_ = printer.JSON(&buf, rep)
	case o.format == "junit":
		_ = printer.JUnit(&buf, rep)
	case live:
		_ = text.Summary(&buf, rep)
	default:
		_ = text.Write(&buf, rep)
	}
	if _, err := out.Write(buf.Bytes()); err != nil {
		return writeFailed("report", err)
	}
	if err := out.close(); err != nil {
		return writeFailed("report", err)
	}
	for _, f := range []struct {
		path, what string
		write      func(io.Writer, *conformance.Report) error
	}{
		{o.junit, "JUnit report", printer.JUnit},
		{o.json, "JSON report", printer.JSON},
		{o.markdown, "Markdown report", printer.Markdown},
		{o.annotations, "annotations", printer.Annotations},
	} {
		if f.path == "" {
			continue
		}
		var b bytes.Buffer
		_ = f.write(&b, rep)
		if err := writeReportFile(f.path, b.Bytes()); err != nil {
			return writeFailed(f.what, err)
		}
	}
	return nil
}

// writeReportFile writes a report file. A file that exists is appended to
// when it is a GitHub Actions summary or a pipe ($GITHUB_STEP_SUMMARY is
// shared by every step of a job), and replaced otherwise.
func writeReportFile(path string, b []byte) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if st, err := os.Stat(path); err == nil && (st.Mode()&os.ModeNamedPipe != 0 || sameFile(path, os.Getenv("GITHUB_STEP_SUMMARY"))) {
		flags = os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeBaseline writes the report as a baseline, whole or not at all. A run
// that was interrupted, or that conform could not run, makes no baseline:
// it would forget the known failures of the checks it did not run.
func writeBaseline(path string, rep *conformance.Report) error {
	if rep.Verdict == conformance.Interrupted || rep.Verdict == conformance.Errored {
		return fmt.Errorf("--update-baseline: not written, the run's verdict is %s (%s)", strings.ToUpper(string(rep.Verdict)), rep.Reason)
	}
	var b bytes.Buffer
	_ = printer.JSON(&b, rep)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".baseline-*")
	if err != nil {
		return fmt.Errorf("--update-baseline: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("--update-baseline: %w", err)
	}
	// A baseline is committed and shared: readable by all, as a file
	// os.Create makes (CreateTemp makes it 0600).
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("--update-baseline: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--update-baseline: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--update-baseline: %w", err)
	}
	return nil
}

// referenceCmd is the reference conform calibrates its timing checks
// with (conformance.ServeReference): conform starts this very executable
// with it, so that it never runs a program it was not given.
const referenceCmd = "__reference"

func newReferenceCmd() *cobra.Command {
	return &cobra.Command{
		Use:    referenceCmd,
		Short:  "The bare gRPC server conform calibrates its timing checks with (internal)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return conformance.ServeReference(cmd.Context(), "")
		},
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// catalogEntry is a check in --list --format json.
type catalogEntry struct {
	ID          string   `json:"id"`
	Level       string   `json:"level"`
	Description string   `json:"description"`
	Fixtures    []string `json:"fixtures"`
	Since       int      `json:"since"`
	OptIn       bool     `json:"opt_in"`
}

// printCatalog prints the catalog, the descriptions with cfg's limits.
func printCatalog(w io.Writer, cfg *conformance.Config, asJSON bool) error {
	if asJSON {
		list := struct {
			CatalogVersion int            `json:"catalog_version"`
			Checks         []catalogEntry `json:"checks"`
		}{CatalogVersion: conformance.CatalogVersion, Checks: []catalogEntry{}}
		for _, c := range conformance.Catalog() {
			list.Checks = append(list.Checks, catalogEntry{ID: c.ID, Level: string(c.Level), Description: c.Describe(cfg),
				Fixtures: append([]string{}, c.Needs...), Since: c.Since(), OptIn: c.OptIn})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	for _, c := range conformance.Catalog() {
		needs := ""
		if len(c.Needs) > 0 {
			needs = "  [fixtures: " + strings.Join(c.Needs, ", ") + "]"
		}
		if _, err := fmt.Fprintf(w, "%-24s %-6s %s%s\n", c.ID, c.Level, c.Describe(cfg), needs); err != nil {
			return err
		}
	}
	return nil
}
