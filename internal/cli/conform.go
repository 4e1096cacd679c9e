package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/conformance/printer"
	"github.com/oe-rt/oe-rt/internal/launch"
)

func init() { register(newConformCmd) }

type conformOptions struct {
	cfg          *conformance.Config
	profile      string
	proto        string
	service      string
	functions    []string
	run, skip    []string
	list         bool
	explain      string
	baseline     string
	update       string
	format       string
	output       string
	junit        string
	verbose      bool
	limitMemory  int64
	limitThreads int
}

func newConformCmd(e *env) *cobra.Command {
	o := &conformOptions{cfg: conformance.NewConfig()}
	cmd := &cobra.Command{
		Use:   "conform [flags] [RUNTIME [-- ARGS...]]",
		Short: "Check a runtime against the convention",
		Long: `Run the conformance suite: start RUNTIME (with ARGS) as the function manager
would, on a free port of 127.0.0.1 given in the environment, exercise Call,
check graceful shutdown and resources, and report check by check.

Without RUNTIME it checks oe-rt's own reference runtime (oe-rt serve).
The runtime must serve the fixture functions echo, context, none, fail and
sleep (see docs/conformance.md); checks that need a missing one are skipped.

Exit status: 0 when every MUST check passed (with --strict, every SHOULD
too), 1 when not, 2 for usage errors or when the harness could not run.
With --baseline the exit status follows the verdict against the baseline:
only regressions, new checks and checks that did not run fail the run.`,
		Example: `  oe-rt conform
  oe-rt conform ./bin/myruntime -- -c etc/openedge/service.yml
  oe-rt conform --strict --format junit -o report.xml ./bin/myruntime
  oe-rt conform --junit report.xml ./bin/myruntime     # text on screen, JUnit to a file
  oe-rt conform --profile baetyl --run 'call.*,echo.*' ./bin/myruntime
  oe-rt conform --list
  oe-rt conform --explain shutdown.drain
  oe-rt conform --update-baseline conform-baseline.json ./bin/myruntime   # once: record today's state
  oe-rt conform --baseline conform-baseline.json ./bin/myruntime          # in CI: fail on regressions only
  oe-rt conform --repeat 5 ./bin/myruntime                                 # find flaky checks`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConform(cmd, e, o, args)
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%w\nThe runtime's own flags go after --: oe-rt conform [flags] RUNTIME -- ARGS...\nRun 'oe-rt conform --help' for usage.", err)
	})
	f := cmd.Flags()
	f.StringVar(&o.profile, "profile", "openedge", "`profile`: openedge (OPENEDGE_SERVICE_ADDRESS, openedge.Function) or baetyl (BAETYL_SERVICE_INSTANCE_ADDRESS, baetyl.Function)")
	f.StringVar(&o.proto, "proto", "", "the runtime's own .proto `file`, parsed at run time")
	f.StringVar(&o.service, "service", "", "the service to call, e.g. acme.Function: from --proto, or else from the runtime's server reflection")
	f.StringArrayVar(&o.cfg.Env, "env", nil, "add `K=V` to the runtime's environment (repeatable)")
	f.StringVar(&o.cfg.Dir, "dir", "", "working `directory` of the runtime")
	f.DurationVar(&o.cfg.StartTimeout, "start-timeout", o.cfg.StartTimeout, "how long the runtime may take to answer its first call")
	f.DurationVar(&o.cfg.Grace, "grace", o.cfg.Grace, "how long the runtime may take to exit after SIGTERM")
	f.StringArrayVar(&o.functions, "function", nil, "serve a fixture role under another name: `ROLE=NAME` (repeatable)")
	f.StringSliceVar(&o.run, "run", nil, "run only these `IDS` (comma-separated IDs or prefix.*)")
	f.StringSliceVar(&o.skip, "skip", nil, "skip these `IDS` (comma-separated IDs or prefix.*)")
	f.BoolVar(&o.cfg.Strict, "strict", false, "a failed SHOULD check fails the run")
	f.BoolVar(&o.list, "list", false, "print the check catalog and exit")
	f.StringVar(&o.explain, "explain", "", "print the page of check `ID` (its rule, why it exists, how it is measured, how to fix it) and exit")
	f.StringVar(&o.format, "format", "text", "report `format`: text, json or junit")
	f.StringVarP(&o.output, "output", "o", "", "write the report to `FILE` instead of standard output")
	f.StringVar(&o.junit, "junit", "", "also write a JUnit report to `FILE`")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log what the harness does to standard error")
	f.Var(sizeValue{&o.limitMemory}, "limit-memory", "also enforce this memory limit with a cgroup, e.g. 50M (where the machine allows)")
	f.IntVar(&o.limitThreads, "limit-threads", 0, "also enforce this thread limit with a cgroup, e.g. 20 (where the machine allows)")
	f.StringVar(&o.baseline, "baseline", "", "judge the run against an earlier JSON report `FILE`: fail only on regressions, list known failures")
	f.StringVar(&o.update, "update-baseline", "", "write this run's JSON report to `FILE`, as the baseline for later runs")
	f.IntVar(&o.cfg.Repeat, "repeat", 1, "run the suite `N` times, with fresh instances each time, and report flaky checks")
	cmd.AddCommand(newReferenceCmd())
	return cmd
}

func runConform(cmd *cobra.Command, e *env, o *conformOptions, args []string) error {
	if o.list {
		return printCatalog(e.stdout)
	}
	if o.explain != "" {
		page, err := conformance.Explain(o.explain, o.cfg)
		if err != nil {
			return usageError("--explain: %w", err)
		}
		_, err = io.WriteString(e.stdout, page)
		return err
	}
	cfg := o.cfg
	switch o.format {
	case "text", "json", "junit":
	default:
		return usageError("--format %q: want text, json or junit", o.format)
	}
	self, err := os.Executable()
	if err != nil {
		return usageError("find oe-rt's own executable: %w", err)
	}
	cfg.Reference = []string{self, "conform", referenceCmd}
	dash := cmd.ArgsLenAtDash()
	switch {
	case dash == 0:
		return usageError("ARGS after -- need a RUNTIME before it")
	case len(args) == 0:
		cfg.Command = []string{self, "serve", "--log-level", "warn"}
	case dash < 0 && len(args) > 1:
		return usageError("put the runtime's arguments after --: oe-rt conform %s -- %s", args[0], strings.Join(args[1:], " "))
	default:
		cfg.Command = args
	}
	cfg.Profile = conformance.Profile(o.profile)
	// --service without --proto: the descriptor comes from the runtime's
	// server reflection once it is up.
	sf := schemaFlags{profile: o.profile, proto: o.proto, service: o.service}
	if o.proto == "" {
		sf.service = ""
		cfg.Service = o.service
	}
	schema, err := sf.schema(cmd.Context())
	if err != nil {
		return err
	}
	if o.proto != "" {
		cfg.Schema = schema
		cfg.ProtoFile = o.proto
	}
	cfg.Functions = map[string]string{}
	for _, kv := range o.functions {
		role, name, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return usageError("--function %q: want ROLE=NAME, e.g. echo=my-echo", kv)
		}
		cfg.Functions[role] = name
	}
	for _, kv := range cfg.Env {
		if !strings.Contains(kv, "=") {
			return usageError("--env %q: want K=V", kv)
		}
	}
	cfg.Run, cfg.Skip = o.run, o.skip
	if cfg.Repeat < 1 {
		return usageError("--repeat %d: want 1 or more", cfg.Repeat)
	}
	if o.baseline != "" {
		b, err := conformance.ReadBaseline(o.baseline)
		if err != nil {
			return usageError("--baseline: %w", err)
		}
		cfg.Baseline = b
	}
	if Version != "dev" {
		cfg.OeRtVersion = Version
	}
	if o.limitMemory > 0 || o.limitThreads > 0 {
		cfg.CgroupLimits = true
		if o.limitMemory > 0 {
			cfg.MemoryLimit = o.limitMemory
		}
		if o.limitThreads > 0 {
			cfg.ThreadLimit = o.limitThreads
		}
	}
	if o.verbose {
		log, _, _ := newLogger(serveLoggerConfig("debug"), e.stderr)
		cfg.Logger = log
	}
	// Orphans of the runtime come back to us, so that they can be found
	// and ended.
	_ = launch.EnableSubreaper()

	out := e.stdout
	var file *os.File
	if o.output != "" {
		file, err = os.Create(o.output)
		if err != nil {
			return usageError("create report: %w", err)
		}
		defer file.Close()
		out = file
	}
	text := printer.Text{Color: colorOK(out), Verbose: o.verbose}
	live := o.format == "text" && isTerminal(out)
	if live {
		var mu sync.Mutex
		fmt.Fprintf(out, "oe-rt conform: %s\n", strings.Join(cfg.Command, " "))
		if cfg.Repeat > 1 {
			cfg.OnRun = func(s conformance.RunSummary) {
				fmt.Fprintf(out, "run %d of %d: %s in %.2fs %s\n", s.N, cfg.Repeat, strings.ToUpper(string(s.Verdict)), s.WallMS/1000, printer.Escape(s.Reason))
			}
		} else {
			cfg.OnResult = func(r conformance.Result) {
				mu.Lock()
				defer mu.Unlock()
				text.Result(out, r)
			}
		}
	}
	// Payload files for the reproduce lines go beside the report written
	// to a file; otherwise into a temporary directory, made only when a
	// line needs one.
	if report := firstNonEmpty(o.output, o.junit); report != "" {
		cfg.ArtifactDir = strings.TrimSuffix(report, filepath.Ext(report)) + ".payloads"
	}
	rep, err := conformance.Run(cmd.Context(), cfg)
	if rep == nil {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("conform: %w", err)}
	}
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
	if _, werr := out.Write(buf.Bytes()); werr != nil {
		return &ExitError{Code: ExitUsage, Err: fmt.Errorf("write report: %w", werr)}
	}
	if o.junit != "" {
		var jb bytes.Buffer
		_ = printer.JUnit(&jb, rep)
		if werr := os.WriteFile(o.junit, jb.Bytes(), 0o644); werr != nil {
			return &ExitError{Code: ExitUsage, Err: fmt.Errorf("write JUnit report: %w", werr)}
		}
	}
	if o.update != "" {
		if err := writeBaseline(o.update, rep); err != nil {
			return &ExitError{Code: ExitUsage, Err: err}
		}
	}
	switch rep.Gate() {
	case conformance.Passed:
		return nil
	case conformance.Failed:
		return &ExitError{Code: ExitFailure}
	default: // interrupted, or the harness could not run a check
		return &ExitError{Code: ExitUsage}
	}
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

func printCatalog(w io.Writer) error {
	for _, c := range conformance.Catalog() {
		needs := ""
		if len(c.Needs) > 0 {
			needs = "  [fixtures: " + strings.Join(c.Needs, ", ") + "]"
		}
		if _, err := fmt.Fprintf(w, "%-24s %-6s %s%s\n", c.ID, c.Level, c.Description, needs); err != nil {
			return err
		}
	}
	return nil
}

// colorOK: colour only on a terminal, and never with NO_COLOR set.
func colorOK(w io.Writer) bool {
	if _, ok := os.LookupEnv("NO_COLOR"); ok {
		return false
	}
	return isTerminal(w) && os.Getenv("TERM") != "dumb"
}
