// Package conformance is oe-rt's conformance suite for function runtimes:
// it starts a runtime as the master starts an instance for the function
// manager (environment, working directory, configuration, a master API
// that refuses; see docs/conformance.md), exercises Call, checks
// graceful shutdown and resources, and returns a Report with one Result per
// check. The command `oe-rt conform` is a thin layer over Run; Go runtime
// authors can call Test from their own tests.
//
// A check is a small value (Check) with a stable ID, a level (MUST, SHOULD,
// MAY), a one-line description and a function; Catalog lists them all. The
// fixture functions (echo, context, none, fail, sleep) are defined by
// behaviour; checks that need one the runtime does not serve are skipped with
// a reason saying how to add it, never passed.
package conformance

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

// Profile names the environment and the proto a runtime is started with
// (convention.Profile: conform, bench and call share it).
type Profile = convention.Profile

// The profiles.
const (
	// ProfileOpenEdge starts the runtime as OpenEdge 0.1.2's master does
	// (convention.Instance.Vars says with which variables) and calls
	// /openedge.Function/Call.
	ProfileOpenEdge = convention.ProfileOpenEdge
	// ProfileBaetyl starts the runtime as Baetyl's master does and calls
	// /baetyl.Function/Call.
	ProfileBaetyl = convention.ProfileBaetyl
)

// Config configures a run of the suite. Start from NewConfig.
type Config struct {
	// Command is the runtime program and its arguments.
	Command []string
	// Dir is the directory the runtime's working directory shows ("" =
	// the current one): the runtime runs in a directory laid out as the
	// master lays out a service's, in which Dir's entries are links.
	Dir string
	// Env adds variables (K=V) to the runtime's environment.
	Env []string
	// ConfigFile, when set, is the runtime's configuration, given as the
	// master gives it: at etc/<profile>/service.yml in the runtime's
	// working directory (a link to the file), with no -c; the working
	// directory then holds only what the master mounts (see layout.go).
	// For the baetyl profile it defaults to Dir's etc/baetyl/service.yml,
	// when there is one and Command has no -c or --config.
	ConfigFile string
	// Profile chooses the environment variables and the default schema.
	Profile Profile
	// Schema overrides the profile's proto (e.g. client.LoadProto).
	Schema *client.Schema
	// ProtoFile is the .proto file Schema was parsed from, for the
	// reproduce lines ("" = none).
	ProtoFile string
	// Service, with no Schema, names the service to call (e.g.
	// "acme.Function"); its descriptor comes from the runtime's server
	// reflection.
	Service string
	// Functions maps fixture roles (echo, context, none, fail, sleep) to the
	// function names the runtime serves them under; a missing role uses its
	// own name.
	Functions map[string]string
	// StartTimeout bounds the wait for the runtime to answer its first call.
	StartTimeout time.Duration
	// Grace is how long the runtime may take to exit after SIGTERM.
	Grace time.Duration
	// Run and Skip select checks by ID or "prefix.*"; empty Run means all.
	Run, Skip []string
	// Strict makes a failed SHOULD fail the run.
	Strict bool
	// MemoryLimit and ThreadLimit are the resource budget (bytes, threads).
	MemoryLimit int64
	ThreadLimit int
	// CgroupLimits enforces MemoryLimit and ThreadLimit on every
	// instance, each in cgroups of its own (cgroup v2, or v1 as root), and
	// judges the resources by them; where the machine cannot,
	// resources.limits says why and the resources are measured.
	CgroupLimits bool
	// Launcher starts the runtime's instances; nil means
	// runtimeproc.Native, processes on this host. (The reference, which
	// measures this machine, is always started natively.) With a
	// runtimeproc.ContainerLauncher (container mode, conform --image)
	// Command[0] names the image and Command[1:] are the container's
	// command, the limits are always enforced (CgroupLimits), and each
	// instance is described as the master's docker engine describes it
	// (container.go).
	Launcher runtimeproc.Launcher `json:"-"`
	// MaxMessageSize is the runtime's message limit
	// (server.message.length.max); 0 means the convention's 4 MiB.
	MaxMessageSize int
	// ArtifactDir is where payload files for the reproduce lines are
	// written ("" = a new temporary directory, made only when needed).
	ArtifactDir string
	// OnResult, when set, is called as each check finishes (for live
	// output); with Repeat, for every check of every run.
	OnResult func(Result)
	// Repeat runs the suite this many times (0 or 1: once), each time with
	// fresh instances of the runtime, sharing nothing but the program, and
	// reports per check in how many runs it failed: stable pass, stable
	// fail or flaky. A flaky MUST fails the run; a flaky SHOULD warns.
	Repeat int
	// Seed draws the sweep's payloads (echo.sweep, echo.json-integers):
	// a run with the seed a report printed sends the same payloads, byte
	// for byte. 0 picks one at random (never 0); with Repeat, every run
	// uses the same seed.
	Seed uint64
	// LifeCalls is how many calls the long life makes on one instance (0:
	// DefaultLifeCalls).
	LifeCalls int
	// Soak, when set, makes the long life go on for this long (and at
	// least LifeCalls calls), with the same oracles and leak checks; the
	// run's time budget grows by as much.
	Soak time.Duration
	// OnRun, when set, is called as each run of a repeated suite ends.
	OnRun func(RunSummary)
	// Baseline, when set, judges the run against an earlier report (see
	// Baseline): the report keeps its raw verdict and adds the baseline's.
	Baseline *Baseline
	// Reference is the program conform starts as its reference to
	// calibrate the timing checks against the machine: a bare gRPC server
	// it controls, serving the echo and sleep fixtures on
	// openedge.Function (ServeReference). conform never runs a program it
	// is not given: empty means no reference, and the timing checks are
	// judged against the absolute line and the runtime's own wait for a
	// CPU only.
	Reference []string
	// OeRtVersion is the version of oe-rt recorded in the report ("": the
	// version of the oe-rt module in the program's build information).
	OeRtVersion string
	// Logger receives the harness's log; nil discards it.
	Logger *slog.Logger
}

// NewConfig returns the defaults: the openedge profile, the function
// manager's 30 s start timeout (Baetyl 1.0's manager dials an instance,
// blocking, within its function timeout, 30 s by default), a 10 s grace
// period, and the container-mode budget of 50 MiB and 20
// threads.
func NewConfig(command ...string) *Config {
	return &Config{
		Command:      command,
		Profile:      ProfileOpenEdge,
		StartTimeout: 30 * time.Second,
		Grace:        10 * time.Second,
		MemoryLimit:  50 << 20,
		ThreadLimit:  20,
	}
}

// Roles are the fixture roles.
var Roles = []string{"echo", "context", "none", "fail", "sleep"}

// Validate reports the first problem with c as a *ConfigError, before
// anything is started: what Run would refuse.
func (c *Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return &ConfigError{Err: fmt.Errorf("no runtime to check")}
	}
	if _, err := convention.ParseProfile(string(c.Profile)); err != nil {
		return &ConfigError{Err: err}
	}
	roles := make([]string, 0, len(c.Functions))
	for role := range c.Functions {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	for _, role := range roles {
		if !contains(Roles, role) {
			return &ConfigError{Field: "Functions", Problem: fmt.Sprintf("%q: unknown role %q: want one of %s", role+"="+c.Functions[role], role, strings.Join(Roles, ", ")),
				Err: fmt.Errorf("function role %q: want one of %s", role, strings.Join(Roles, ", "))}
		}
	}
	if err := checkEnv(c.Env); err != nil {
		return err
	}
	for _, sel := range []struct {
		field string
		ids   []string
	}{{"Run", c.Run}, {"Skip", c.Skip}} {
		for _, id := range sel.ids {
			if len(Select([]string{id})) == 0 {
				return &ConfigError{Field: sel.field, Problem: fmt.Sprintf("%q: no check matches (see oe-rt conform --list)", id),
					Err: fmt.Errorf("no check matches %q (see --list)", id)}
			}
		}
	}
	if c.ConfigFile != "" {
		st, err := os.Stat(c.ConfigFile)
		switch {
		case err != nil:
			return &ConfigError{Err: fmt.Errorf("--config: %w", err)}
		case !st.Mode().IsRegular():
			return &ConfigError{Err: fmt.Errorf("--config %s: not a file", c.ConfigFile)}
		}
		for _, a := range c.Command[1:] {
			if a == "-c" || a == "--config" || strings.HasPrefix(a, "-c=") || strings.HasPrefix(a, "--config=") {
				return &ConfigError{Err: fmt.Errorf("--config gives the runtime its configuration as the master does, at %s with no -c: drop %q from the runtime's arguments", configPath(string(c.Profile)), a)}
			}
		}
	}
	if c.StartTimeout <= 0 {
		return fieldError("StartTimeout", "the start timeout", "must be positive, got %s", c.StartTimeout)
	}
	if c.Grace <= 0 {
		return fieldError("Grace", "the grace period", "must be positive, got %s", c.Grace)
	}
	if c.Repeat < 0 {
		return fieldError("Repeat", "the repeat count", "must not be negative, got %d", c.Repeat)
	}
	if c.ThreadLimit < 1 {
		return fieldError("ThreadLimit", "the thread limit", "must be at least 1, got %d", c.ThreadLimit)
	}
	if c.LifeCalls < 0 {
		return fieldError("LifeCalls", "the long life's call count", "must not be negative, got %d", c.LifeCalls)
	}
	if c.Soak < 0 {
		return fieldError("Soak", "the soak duration", "must not be negative, got %s", c.Soak)
	}
	if c.MaxMessageSize < 0 {
		return fieldError("MaxMessageSize", "the message size limit", "must not be negative, got %d", c.MaxMessageSize)
	}
	return nil
}

// reservedEnv are the variables the harness sets itself: a runtime must
// read the address and name it is given, so Env cannot replace them.
var reservedEnv = append(append([]string{}, convention.AddressEnv...), convention.NameEnv...)

// checkEnv checks that every entry of env is K=V, and no K one the
// harness sets.
func checkEnv(env []string) error {
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "":
			return &ConfigError{Field: "Env", Problem: fmt.Sprintf("%q: want K=V", kv),
				Err: fmt.Errorf("environment entry %q: want K=V", kv)}
		case contains(reservedEnv, k):
			return &ConfigError{Field: "Env", Problem: fmt.Sprintf("%q: the harness sets %s itself (to the address and name it gives the runtime); use --profile to choose which variables", kv, k),
				Err: fmt.Errorf("environment entry %q: the harness sets %s itself (to the address and name it gives the runtime); the profile chooses which variables", kv, k)}
		}
	}
	return nil
}

// lifeCalls is how many calls the long life makes.
func (c *Config) lifeCalls() int {
	if c.LifeCalls > 0 {
		return c.LifeCalls
	}
	return DefaultLifeCalls
}

// ConfigError is a configuration that cannot work: a usage error for the
// command line.
type ConfigError struct {
	// Field, when the problem is one field's, names it (e.g.
	// "StartTimeout"), and Problem says what is wrong with its value in
	// words that follow the field's name ("must be positive, got 0s"), so
	// that a command line can name its flag instead.
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

// oeRtVersion is the version recorded in reports.
func (c *Config) oeRtVersion() string {
	if c.OeRtVersion != "" {
		return c.OeRtVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	const module = "github.com/oe-rt/oe-rt"
	v := ""
	if bi.Main.Path == module {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == module {
			v = d.Version
		}
	}
	if v == "(devel)" {
		v = "dev" // built from a checkout, as `oe-rt version` says
	}
	return v
}

func (c *Config) maxMessageSize() int {
	if c.MaxMessageSize > 0 {
		return c.MaxMessageSize
	}
	return convention.DefaultMaxMessageSize
}

func (c *Config) schema() *client.Schema {
	if c.Schema != nil {
		return c.Schema
	}
	return client.ForProfile(c.Profile)
}

// fn returns the function name for a fixture role.
func (c *Config) fn(role string) string {
	if n, ok := c.Functions[role]; ok && n != "" {
		return n
	}
	return role
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func discard(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fixtureContract says what each fixture role does, for messages.
var fixtureContract = map[string]string{
	"echo":    "returns its payload unchanged",
	"context": `returns {"messageQOS","messageTopic","functionName","functionInvokeID"} of the call`,
	"none":    "returns nothing",
	"fail":    `raises an error whose message contains "conformance failure"`,
	"sleep":   `waits {"ms": N} milliseconds and returns its payload`,
}
