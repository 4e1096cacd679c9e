// Package actiontest runs a composite GitHub Action (action.yml) on this
// machine as the GitHub Actions runner runs it, so that a test can check
// what a job would show: the log, the job summary, the annotations, the
// action's outputs and whether the step failed.
//
// What it does as the runner does: each `run:` step is written to a file
// and run with its shell (bash: `bash --noprofile --norc -eo pipefail
// FILE`; sh: `sh -e FILE`) in its working-directory, with GITHUB_OUTPUT,
// GITHUB_STEP_SUMMARY, GITHUB_ENV and GITHUB_PATH pointed at fresh files of
// each step, read back after it (name=value and name<<DELIMITER forms);
// ${{ }} expressions in env, working-directory and run are replaced
// (inputs.*, with their defaults; github.action_path, github.workspace,
// runner.temp, steps.ID.outputs.*, env.*); the step's standard output and
// error are one log, whose workflow commands (::error, ::warning,
// ::notice, ::stop-commands::TOKEN ... ::TOKEN::) are read as the runner
// reads them. A failed step fails the action and the steps after it do not
// run.
//
// What it does not do: `uses:` steps and `if:` conditions are refused (an
// action that has them cannot be checked here), and expressions other than
// the plain references above are errors.
package actiontest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// Action is a composite action, as action.yml declares it.
type Action struct {
	Name    string            `yaml:"name"`
	Inputs  map[string]Input  `yaml:"inputs"`
	Outputs map[string]Output `yaml:"outputs"`
	Runs    struct {
		Using string `yaml:"using"`
		Steps []Step `yaml:"steps"`
	} `yaml:"runs"`
}

// Input is an input of the action.
type Input struct {
	Description string `yaml:"description"`
	Required    bool   `yaml:"required"`
	Default     string `yaml:"default"`
}

// Output is an output of the action: an expression, usually a step's
// output.
type Output struct {
	Description string `yaml:"description"`
	Value       string `yaml:"value"`
}

// Step is one step of a composite action.
type Step struct {
	ID               string            `yaml:"id"`
	Name             string            `yaml:"name"`
	Shell            string            `yaml:"shell"`
	Run              string            `yaml:"run"`
	WorkingDirectory string            `yaml:"working-directory"`
	Env              map[string]string `yaml:"env"`
	Uses             string            `yaml:"uses"`
	If               string            `yaml:"if"`
	With             map[string]string `yaml:"with"`
}

// Load reads an action.yml and checks that this package can run it.
func Load(path string) (*Action, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var a Action
	if err := yaml.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a.Runs.Using != "composite" {
		return nil, fmt.Errorf("%s: runs.using is %q: only composite actions are run here", path, a.Runs.Using)
	}
	for i, s := range a.Runs.Steps {
		switch {
		case s.Uses != "":
			return nil, fmt.Errorf("%s: step %d uses %s: only run steps are run here", path, i+1, s.Uses)
		case s.If != "":
			return nil, fmt.Errorf("%s: step %d has if: %q: conditions are not run here", path, i+1, s.If)
		case s.Run == "":
			return nil, fmt.Errorf("%s: step %d has no run", path, i+1)
		case s.Shell == "":
			return nil, fmt.Errorf("%s: step %d has no shell: a composite action's run step must name one", path, i+1)
		}
	}
	return &a, nil
}

// Config is the job the action runs in.
type Config struct {
	// ActionPath is the action's directory (github.action_path).
	ActionPath string
	// Workspace is the job's working directory (github.workspace), where
	// a relative working-directory starts.
	Workspace string
	// Temp is runner.temp; the step files go there too.
	Temp string
	// Inputs are the `with:` of the step that uses the action.
	Inputs map[string]string
	// Env is the job's environment (PATH included).
	Env []string
	// Timeout bounds each step.
	Timeout time.Duration
}

// Annotation is an ::error, ::warning or ::notice command the runner read.
type Annotation struct {
	Level   string // error, warning, notice
	Props   map[string]string
	Message string
}

// Title is the annotation's title property.
func (a Annotation) Title() string { return a.Props["title"] }

// StepResult is what one step did.
type StepResult struct {
	Name     string
	ExitCode int
	Log      string            // its standard output and error, as the job's log shows them
	Outputs  map[string]string // written to GITHUB_OUTPUT
}

// Result is what the job shows after the action ran.
type Result struct {
	Steps []StepResult
	// Log is every step's log, one after the other.
	Log string
	// Annotations are the commands read from the log (none between
	// ::stop-commands and its token).
	Annotations []Annotation
	// Summary is what the steps wrote to GITHUB_STEP_SUMMARY.
	Summary string
	// Outputs are the action's outputs.
	Outputs map[string]string
	// Failed says the action failed: a step exited with a status other
	// than 0 (the steps after it did not run).
	Failed bool
	// Leftovers are processes a step left running (ended by Run).
	Leftovers []int
}

// Run runs the action's steps in order.
func (a *Action) Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	inputs, err := a.inputValues(cfg)
	if err != nil {
		return nil, err
	}
	r := &actionRun{cfg: cfg, inputs: inputs, env: runnerEnv(cfg), steps: map[string]map[string]string{}, res: &Result{}, cmds: &commandReader{}}
	for i, s := range a.Runs.Steps {
		sr, err := r.step(ctx, i, s)
		if err != nil {
			return nil, err
		}
		r.res.Steps = append(r.res.Steps, sr)
		if sr.ExitCode != 0 {
			r.res.Failed = true
			break
		}
	}
	res := r.res
	res.Log, res.Summary = r.log.String(), r.summary.String()
	res.Outputs = map[string]string{}
	for name, o := range a.Outputs {
		v, err := evaluate(o.Value, inputs, r.steps, r.env, cfg)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		res.Outputs[name] = v
	}
	return res, nil
}

// inputValues are the action's inputs: those given, the defaults of the
// others; an input the action does not have, or a required one missing,
// is an error.
func (a *Action) inputValues(cfg Config) (map[string]string, error) {
	for name := range cfg.Inputs {
		if _, ok := a.Inputs[name]; !ok {
			return nil, fmt.Errorf("input %q: the action has no such input", name)
		}
	}
	inputs := map[string]string{}
	for name, in := range a.Inputs {
		v, ok := cfg.Inputs[name]
		if !ok {
			if in.Required {
				return nil, fmt.Errorf("input %q is required", name)
			}
			v = in.Default
		}
		inputs[name] = v
	}
	return inputs, nil
}

// runnerEnv is Config.Env with the variables the runner sets.
func runnerEnv(cfg Config) map[string]string {
	env := envMap(cfg.Env)
	for k, v := range map[string]string{
		"GITHUB_ACTIONS": "true", "CI": "true", "RUNNER_OS": "Linux", "RUNNER_TEMP": cfg.Temp,
		"GITHUB_WORKSPACE": cfg.Workspace, "GITHUB_ACTION_PATH": cfg.ActionPath,
	} {
		env[k] = v
	}
	return env
}

// actionRun is one Run: what the steps so far left for the next ones.
type actionRun struct {
	cfg          Config
	inputs       map[string]string
	env          map[string]string            // GITHUB_ENV and GITHUB_PATH of the steps so far applied
	steps        map[string]map[string]string // step ID -> its outputs
	res          *Result
	log, summary strings.Builder
	cmds         *commandReader
}

// step runs step i and takes what it left: its log's annotations, its
// outputs, its summary, its environment and PATH for the next steps.
func (r *actionRun) step(ctx context.Context, i int, s Step) (StepResult, error) {
	script, dir, stepEnv, err := r.prepare(i, s)
	if err != nil {
		return StepResult{}, err
	}
	files := map[string]string{}
	for _, k := range []string{"GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH"} {
		f, err := os.CreateTemp(r.cfg.Temp, strings.ToLower(k)+"-*")
		if err != nil {
			return StepResult{}, err
		}
		f.Close()
		files[k] = f.Name()
		stepEnv[k] = f.Name()
	}
	sr, leftovers, err := runStep(ctx, r.cfg, s, i, script, dir, stepEnv)
	if err != nil {
		return sr, err
	}
	r.res.Leftovers = append(r.res.Leftovers, leftovers...)
	r.log.WriteString(sr.Log)
	r.res.Annotations = append(r.res.Annotations, r.cmds.read(sr.Log)...)
	if sr.Outputs, err = readKeyValues(files["GITHUB_OUTPUT"]); err != nil {
		return sr, fmt.Errorf("step %d GITHUB_OUTPUT: %w", i+1, err)
	}
	if s.ID != "" {
		r.steps[s.ID] = sr.Outputs
	}
	return sr, r.takeFiles(i, files)
}

// prepare evaluates step i's script, working directory and environment.
func (r *actionRun) prepare(i int, s Step) (script, dir string, env map[string]string, err error) {
	eval := func(expr string) (string, error) {
		return evaluate(expr, r.inputs, r.steps, r.env, r.cfg)
	}
	env = copyMap(r.env)
	for k, v := range s.Env {
		ev, err := eval(v)
		if err != nil {
			return "", "", nil, fmt.Errorf("step %d env %s: %w", i+1, k, err)
		}
		env[k] = ev
	}
	if script, err = eval(s.Run); err != nil {
		return "", "", nil, fmt.Errorf("step %d run: %w", i+1, err)
	}
	dir = r.cfg.Workspace
	if s.WorkingDirectory != "" {
		wd, err := eval(s.WorkingDirectory)
		if err != nil {
			return "", "", nil, fmt.Errorf("step %d working-directory: %w", i+1, err)
		}
		if !filepath.IsAbs(wd) {
			wd = filepath.Join(r.cfg.Workspace, wd)
		}
		dir = wd
	}
	return script, dir, env, nil
}

// takeFiles takes step i's summary, environment and PATH additions.
func (r *actionRun) takeFiles(i int, files map[string]string) error {
	b, err := os.ReadFile(files["GITHUB_STEP_SUMMARY"])
	if err != nil {
		return err
	}
	r.summary.Write(b)
	newEnv, err := readKeyValues(files["GITHUB_ENV"])
	if err != nil {
		return fmt.Errorf("step %d GITHUB_ENV: %w", i+1, err)
	}
	for k, v := range newEnv {
		r.env[k] = v
	}
	paths, err := os.ReadFile(files["GITHUB_PATH"])
	if err != nil {
		return err
	}
	for _, p := range strings.Split(strings.TrimSpace(string(paths)), "\n") {
		if p = strings.TrimSpace(p); p != "" {
			r.env["PATH"] = p + string(os.PathListSeparator) + r.env["PATH"]
		}
	}
	return nil
}

// shells are the runner's command lines for a step's shell.
var shells = map[string][]string{
	"bash": {"bash", "--noprofile", "--norc", "-eo", "pipefail"},
	"sh":   {"sh", "-e"},
}

func runStep(ctx context.Context, cfg Config, s Step, i int, script, dir string, env map[string]string) (StepResult, []int, error) {
	sr := StepResult{Name: s.Name}
	argv, ok := shells[s.Shell]
	if !ok {
		return sr, nil, fmt.Errorf("step %d: shell %q is not run here (bash or sh)", i+1, s.Shell)
	}
	f, err := os.CreateTemp(cfg.Temp, "step-*.sh")
	if err != nil {
		return sr, nil, err
	}
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return sr, nil, err
	}
	if err := f.Close(); err != nil {
		return sr, nil, err
	}
	// One log for both streams, in the order they were written, as the
	// runner reads them.
	p, err := launch.Start(launch.Spec{
		Path: "/bin/sh", Args: append([]string{"-c", `exec 2>&1; exec "$@"`, "step"}, append(argv, f.Name())...),
		Dir: dir, Env: envList(env), TailBytes: 16 << 20,
	})
	if err != nil {
		return sr, nil, fmt.Errorf("step %d: %w", i+1, err)
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	werr := p.Wait(wctx)
	p.Stop(5 * time.Second)
	leftovers := p.Leftovers()
	if werr != nil {
		return sr, leftovers, fmt.Errorf("step %d (%s) did not finish within %s: %w\n%s", i+1, s.Name, cfg.Timeout, werr, p.Stdout())
	}
	e, _ := p.ExitStatus()
	sr.ExitCode = e.Code
	if e.Signal != 0 {
		sr.ExitCode = 128 + int(e.Signal)
	}
	sr.Log = p.Stdout()
	return sr, leftovers, nil
}

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// evaluate replaces the ${{ }} expressions of s.
func evaluate(s string, inputs map[string]string, steps map[string]map[string]string, env map[string]string, cfg Config) (string, error) {
	var bad error
	out := expression.ReplaceAllStringFunc(s, func(m string) string {
		ref := expression.FindStringSubmatch(m)[1]
		parts := strings.Split(ref, ".")
		switch {
		case len(parts) == 2 && parts[0] == "inputs":
			if v, ok := inputs[parts[1]]; ok {
				return v
			}
			bad = fmt.Errorf("%s: no such input", m)
		case ref == "github.action_path":
			return cfg.ActionPath
		case ref == "github.workspace":
			return cfg.Workspace
		case ref == "runner.temp":
			return cfg.Temp
		case len(parts) == 2 && parts[0] == "env":
			return env[parts[1]]
		case len(parts) == 4 && parts[0] == "steps" && parts[2] == "outputs":
			return steps[parts[1]][parts[3]] // an output not set is empty, as on the runner
		default:
			bad = fmt.Errorf("%s: expression not run here", m)
		}
		return ""
	})
	return out, bad
}

// readKeyValues reads a GITHUB_OUTPUT or GITHUB_ENV file: name=value
// lines and name<<DELIMITER ... DELIMITER blocks.
func readKeyValues(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" {
			continue
		}
		eq, heredoc := strings.Index(l, "="), strings.Index(l, "<<")
		if heredoc >= 0 && (eq < 0 || heredoc < eq) {
			name, delim := l[:heredoc], l[heredoc+2:]
			var val []string
			for i++; ; i++ {
				if i >= len(lines) {
					return nil, fmt.Errorf("%s: no closing %s", name, delim)
				}
				if lines[i] == delim {
					break
				}
				val = append(val, lines[i])
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		if eq <= 0 {
			return nil, fmt.Errorf("line %q: want name=value or name<<DELIMITER", l)
		}
		out[l[:eq]] = l[eq+1:]
	}
	return out, nil
}

// commandReader reads workflow commands from a log as the runner does: a
// line, leading whitespace trimmed, that starts with ::; none while
// commands are stopped.
type commandReader struct {
	stopToken string
}

var command = regexp.MustCompile(`^::([a-zA-Z-]+)(?: ([^:]*))?::(.*)$`)

func (c *commandReader) read(log string) []Annotation {
	var out []Annotation
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l := strings.TrimLeft(sc.Text(), " \t")
		if c.stopToken != "" {
			if l == "::"+c.stopToken+"::" {
				c.stopToken = ""
			}
			continue
		}
		m := command.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		switch m[1] {
		case "stop-commands":
			c.stopToken = m[3]
		case "error", "warning", "notice":
			a := Annotation{Level: m[1], Props: map[string]string{}, Message: unescapeData(m[3])}
			if m[2] != "" {
				for _, kv := range strings.Split(m[2], ",") {
					k, v, _ := strings.Cut(kv, "=")
					a.Props[strings.TrimSpace(k)] = unescapeProperty(v)
				}
			}
			out = append(out, a)
		}
	}
	return out
}

func unescapeData(s string) string {
	return strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace(s)
}

func unescapeProperty(s string) string {
	return strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%").Replace(s)
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func copyMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
