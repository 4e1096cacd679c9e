package e2e_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oe-rt/oe-rt/internal/actiontest"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/scaffold"
)

// oeRT is the oe-rt binary built once for all tests, or the one named by
// $OE_RT_E2E_BINARY (to test a release build).
var oeRT string

func TestMain(m *testing.M) {
	// The workflow step runs through actiontest, which starts processes
	// with the launcher: its helpers must run from here.
	launch.Init()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	defer removeStatic()
	if testing.Short() {
		return m.Run()
	}
	if b := os.Getenv("OE_RT_E2E_BINARY"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: OE_RT_E2E_BINARY:", err)
			return 1
		}
		oeRT = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "oe-rt-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	oeRT = filepath.Join(dir, "oe-rt")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", oeRT, "github.com/oe-rt/oe-rt/cmd/oe-rt")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build oe-rt: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// languages are the templates the issue promises; each must be built in.
var languages = []string{"go", "python", "node"}

func TestTemplates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and conforms a generated project per language")
	}
	requireConform(t)
	langs, err := scaffold.Languages()
	if err != nil {
		t.Fatal(err)
	}
	built := map[string]bool{}
	for _, l := range langs {
		built[l.Name] = true
	}
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			if !built[lang] {
				t.Fatalf("oe-rt has no %s template: templates/%s with a %s is missing", lang, lang, scaffold.ManifestFile)
			}
			testLanguage(t, lang)
		})
	}
}

// requireConform fails when the oe-rt binary has no conform command.
func requireConform(t *testing.T) {
	t.Helper()
	out, err := exec.Command(oeRT, "conform", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("oe-rt has no working conform command (%v): the template tests need it\n%s", err, out)
	}
}

// tools checks a language's tools and returns what to install when one is
// missing.
func tools(lang string) error {
	var missing []string
	need := func(bin, install string) {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", bin, install))
		}
	}
	need("make", "apt-get install make")
	switch lang {
	case "go":
		need("go", "https://go.dev/doc/install")
		need("gofmt", "it comes with Go")
	case "python":
		if py := python(); py == "" {
			missing = append(missing, "a python3 that imports grpc, google.protobuf and yaml (apt-get install python3 python3-grpcio python3-protobuf python3-yaml)")
		}
	case "node":
		need("node", "Node.js 20 or later (Debian 13's nodejs; Debian 12's is 18)")
		need("npm", "apt-get install npm")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the %s template test needs %s; scripts/install-deps.sh installs them", lang, strings.Join(missing, ", "))
	}
	return nil
}

// python finds the interpreter the Python template's bin/python picks
// ($PYTHON, else /usr/bin/python3, else python3) if it has the packages.
func python() string {
	cands := []string{os.Getenv("PYTHON"), "/usr/bin/python3", "python3"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if exec.Command(c, "-c", "import grpc, google.protobuf, yaml").Run() == nil {
			return c
		}
	}
	return ""
}

func testLanguage(t *testing.T, lang string) {
	if err := tools(lang); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dir := filepath.Join(t.TempDir(), "e2e-"+lang)
	sh(t, filepath.Dir(dir), 30*time.Second, oeRT, "new", "e2e-"+lang, "--lang", lang, "--dir", dir)

	if lang == "go" {
		if out := sh(t, dir, time.Minute, "gofmt", "-l", "."); strings.TrimSpace(out) != "" {
			t.Errorf("generated Go code is not gofmt-clean:\n%s", out)
		}
	}
	// make build compiles (Go), or installs the dependencies (Node: npm ci
	// from the lockfile shipped in the template).
	sh(t, dir, 5*time.Minute, "make", "build")
	sh(t, dir, 10*time.Minute, "make", "test")
	if lang == "go" {
		sh(t, dir, time.Minute, "go", "mod", "tidy", "-diff")
	}

	// The Makefile's conform target, as a developer runs it, with
	// container mode's limits enforced by the kernel where this machine
	// can (CONFORM_FLAGS, as the template's README says). OE_RT is the
	// Makefile's one contract: it names oe-rt, here a wrapper that also
	// writes a JUnit report to read the results back.
	limits := enforcedLimits(t)
	junit := filepath.Join(t.TempDir(), "make-conform.xml")
	out := sh(t, dir, 3*time.Minute, "make", "conform", "OE_RT="+junitWrapper(t, junit), "CONFORM_FLAGS="+strings.Join(limits, " "))
	t.Logf("make conform %s:\n%s", strings.Join(limits, " "), out)
	requireAllPassed(t, junit, len(limits) > 0)

	// As a Baetyl master starts it: the baetyl profile's variables and no
	// -c, so the runtime must find etc/baetyl/service.yml by itself; under
	// the limits too.
	baetylReport := filepath.Join(t.TempDir(), "baetyl.xml")
	args := append([]string{"conform", "--strict", "--profile", "baetyl", "--junit", baetylReport}, limits...)
	runtime := "./bin/runtime" // the launcher of an interpreted language
	if lang == "go" {
		runtime = "./bin/e2e-go"
	}
	out = shAllowFail(t, dir, 3*time.Minute, oeRT, append(args, runtime)...)
	t.Logf("conform --profile baetyl, no -c:\n%s", out)
	requireAllPassed(t, baetylReport, len(limits) > 0)

	// The CI workflow's conform step, as written (measured: no limits):
	// this repository's action.yml with the step's inputs, run as the
	// GitHub Actions runner runs it (it builds oe-rt from this checkout).
	with := workflowConform(t, dir)
	a, err := actiontest.Load(filepath.Join(repoRoot(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := a.Run(ctx, actiontest.Config{ActionPath: repoRoot(t), Workspace: dir, Temp: t.TempDir(), Inputs: with, Env: os.Environ(), Timeout: 4 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the workflow's conform step:\n%s", res.Log)
	if len(res.Leftovers) > 0 {
		t.Errorf("processes outlived the action's steps: %v", res.Leftovers)
	}
	if res.Failed || res.Outputs["verdict"] != "passed" {
		t.Errorf("the workflow's conform step failed (verdict %q): %+v", res.Outputs["verdict"], res.Annotations)
	}
	// The verdict is judged from the report too, which says which check failed.
	requireAllPassed(t, res.Outputs["junit"], false)
	t.Logf("%s: generated, built, tested and conformed in %s", lang, time.Since(start).Round(time.Second))
}

// junitWrapper writes a script that runs oe-rt with --junit FILE added
// after its subcommand.
func junitWrapper(t *testing.T, file string) string {
	t.Helper()
	w := filepath.Join(t.TempDir(), "oe-rt")
	script := "#!/bin/sh\nsub=$1\nshift\nexec '" + oeRT + "' \"$sub\" --junit '" + file + "' \"$@\"\n"
	if err := os.WriteFile(w, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// workflowConform returns the inputs (with:) of the project's CI workflow
// step that uses the oe-rt action (uses: oe-rt/oe-rt@REF).
func workflowConform(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, ".github", "workflows", "*.yml"))
	if len(files) == 0 {
		t.Fatal("the project has no .github/workflows/*.yml")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Jobs map[string]struct {
				Steps []struct {
					Uses string            `yaml:"uses"`
					With map[string]string `yaml:"with"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(b, &wf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, j := range wf.Jobs {
			for _, s := range j.Steps {
				if strings.HasPrefix(s.Uses, "oe-rt/oe-rt@") {
					if s.With["strict"] != "true" {
						t.Errorf("%s: the conform step should be strict: %v", f, s.With)
					}
					return s.With
				}
			}
		}
	}
	t.Fatal("no step `uses: oe-rt/oe-rt@…` in .github/workflows")
	return nil
}

// repoRoot is the repository's top, where action.yml is.
func repoRoot(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type junitSuites struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name    string    `xml:"name,attr"`
			Failure *junitMsg `xml:"failure"`
			Skipped *junitMsg `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitMsg struct {
	Message string `xml:"message,attr"`
}

// optionalChecks run only when asked for: resources.limits needs
// --limit-memory/--limit-threads (enforcedLimits).
var optionalChecks = map[string]bool{"resources.limits": true}

// requireLimitsEnv, when set (scripts/test.sh sets it where it runs as
// root), makes a machine that cannot enforce limits fail the test instead
// of running the templates unlimited.
const requireLimitsEnv = "OE_RT_TEST_REQUIRE_LIMITS"

// enforcedLimits returns the flags that enforce container mode's 50 MiB
// and 20 threads on each instance, or none (logged, with the reason)
// where this machine cannot enforce them.
func enforcedLimits(t *testing.T) []string {
	t.Helper()
	if _, err := launch.CheckLimits(); err != nil {
		if os.Getenv(requireLimitsEnv) != "" {
			t.Fatalf("%s is set, but: %v", requireLimitsEnv, err)
		}
		t.Logf("conform runs without enforced limits: %v", err)
		return nil
	}
	return []string{"--limit-memory", "50m", "--limit-threads", "20"}
}

// catalog lists the IDs of `oe-rt conform --list`.
func catalog(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(oeRT, "conform", "--list").Output()
	if err != nil {
		t.Fatalf("oe-rt conform --list: %v", err)
	}
	var ids []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(f[0], ".") {
			ids = append(ids, f[0])
		}
	}
	if len(ids) == 0 {
		t.Fatalf("oe-rt conform --list listed no checks:\n%s", out)
	}
	return ids
}

// requireAllPassed reads a JUnit report of oe-rt conform and fails unless
// every check of the catalog ran and passed: no failure, no skip, none left
// out (with --skip or --run); resources.limits too when limits were
// enforced.
func requireAllPassed(t *testing.T, file string, enforced bool) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("conformance report: %v", err)
	}
	var r junitSuites
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatalf("conformance report %s: %v", file, err)
	}
	n := 0
	ran := map[string]bool{}
	for _, s := range r.Suites {
		for _, p := range s.Properties {
			if p.Name == "resources" && enforced && p.Value != "enforced" {
				t.Errorf("the limits were asked for, but the report says resources were %s", p.Value)
			}
		}
		for _, c := range s.Cases {
			n++
			ran[c.Name] = true
			switch {
			case c.Failure != nil:
				t.Errorf("check %s failed: %s", c.Name, c.Failure.Message)
			case c.Skipped != nil:
				t.Errorf("check %s was skipped: %s", c.Name, c.Skipped.Message)
			}
		}
	}
	if n == 0 {
		t.Errorf("the conformance report %s holds no checks", file)
	}
	for _, id := range catalog(t) {
		if !ran[id] && (!optionalChecks[id] || enforced) {
			t.Errorf("check %s did not run: every check must pass, none may be left out", id)
		}
	}
}

// sh runs a command in dir with a time limit and fails the test, showing
// its output, unless it succeeds. The command runs in its own process
// group, which is killed when the limit passes; PATH starts with oe-rt's
// directory.
func sh(t *testing.T, dir string, limit time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := runCmd(t, dir, limit, name, args...)
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return out
}

// shAllowFail is sh for a command that may exit non-zero (a conform run
// that finds a failure); it still fails the test on a time-out.
func shAllowFail(t *testing.T, dir string, limit time.Duration, name string, args ...string) string {
	t.Helper()
	out, _ := runCmd(t, dir, limit, name, args...)
	return out
}

func runCmd(t *testing.T, dir string, limit time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(oeRT)+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	// Whatever the command left in its group goes with it.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("%s %s: no result within %s\n%s", name, strings.Join(args, " "), limit, out.String())
	}
	t.Logf("%s %s: %v in %s", name, strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond))
	return out.String(), err
}
