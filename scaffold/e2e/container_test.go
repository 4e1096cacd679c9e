package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireDockerEnv, when set (scripts/test.sh sets it where it starts a
// Docker engine), makes a machine where no engine answers, or where the base
// images cannot be built, fail the container tests instead of skipping them.
const requireDockerEnv = "OE_RT_TEST_REQUIRE_DOCKER"

// testLabel is on every container, network and image the container tests
// make; runLabel tells one test's from another's.
const (
	testLabel = "oe-rt.test"
	runLabel  = "oe-rt.test.run"
)

// containerCase is what differs between the templates in container mode.
type containerCase struct {
	// base is the base image scripts/base-images.sh makes for the
	// template ("" for none: the Go image is FROM scratch).
	base string
	// handler is the handler of each fixture role (echo, context, none,
	// fail, sleep): prefix+role, or what handlers says.
	prefix   string
	handlers map[string]string
	// code is the project's directory mounted as the function's code
	// ("" for none: Go functions are compiled in).
	code string
	// network is the build's network for RUN instructions: the private
	// engine of scripts/docker-engine.sh has no default bridge, so none
	// where the build needs no network, host where npm ci fetches packages.
	network string
}

var containerCases = map[string]containerCase{
	"go": {network: "none", handlers: map[string]string{"echo": "functions.Echo", "context": "functions.CallContext",
		"none": "functions.None", "fail": "functions.Fail", "sleep": "functions.Sleep"}},
	"python": {base: "python", prefix: "fixtures.", code: "functions/conformance", network: "none"},
	"node":   {base: "node", prefix: "fixtures.", code: "functions/conformance", network: "host"},
}

// fixtureRoles are the roles of conform's fixtures.
var fixtureRoles = []string{"echo", "context", "none", "fail", "sleep"}

// handler is the handler of a fixture role.
func (c containerCase) handler(role string) string {
	if h, ok := c.handlers[role]; ok {
		return h
	}
	return c.prefix + role
}

// TestTemplateImages generates each template's project, builds its image
// with `make docker` (Python and Node FROM the local bases of
// scripts/base-images.sh, since no registry need answer), and runs
// `oe-rt conform --image --profile baetyl --strict` on it: every check, in
// containers made as a Baetyl 1.0 master makes an instance in docker mode
// (a user-defined network, every address variable 0.0.0.0:50051, restart
// policy no, no init, no -c, 50 MiB and 20 pids enforced), with Baetyl's
// example configuration forms mounted read-only at /etc/baetyl/service.yml
// (functions only it declares, a relative codedir whose code is mounted
// where it names, a log file the image's user cannot create). Then it runs
// the image alone, with its own configuration. Everything it made is
// labelled and removed, also when it fails. The languages run side by
// side: while one image builds, another is conformed.
func TestTemplateImages(t *testing.T) {
	docker, cli, buildkit := imageTest(t, "builds and runs each template's image on a Docker engine")
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			c, ok := containerCases[lang]
			if !ok {
				t.Fatalf("no container case for the %s template", lang)
			}
			testImage(t, docker, cli, buildkit, lang, c)
		})
	}
}

// imageTest starts an image test: skipped under -short (why says what it
// would have done), run after the package's other tests (which time their runtimes)
// and beside the other image tests, since most of their time is spent
// waiting on the engine. It returns the docker CLI, the CLI that builds
// and whether that is BuildKit (buildCLI).
func imageTest(t *testing.T, why string) (docker, cli string, buildkit bool) {
	t.Helper()
	if testing.Short() {
		t.Skip(why)
	}
	t.Parallel()
	docker = requireDocker(t)
	cli, buildkit = buildCLI(t, docker)
	return docker, cli, buildkit
}

// requireDocker returns the docker CLI when an engine answers; otherwise it
// skips the test, or fails it under OE_RT_TEST_REQUIRE_DOCKER.
func requireDocker(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv(requireDockerEnv) != "" {
			t.Fatalf("%s is set, but %s", requireDockerEnv, msg)
		}
		t.Skipf("%s (eval \"$(./scripts/docker-engine.sh start)\" starts one)", msg)
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		unavailable("no docker CLI on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, docker, "version", "--format", "{{.Server.APIVersion}}").CombinedOutput()
	if err != nil {
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = "unix:///var/run/docker.sock (DOCKER_HOST is not set)"
		}
		unavailable("no Docker engine answers at %s: %v: %s", host, err, strings.TrimSpace(string(out)))
	}
	t.Logf("Docker engine API %s", strings.TrimSpace(string(out)))
	return docker
}

// buildCLI returns the docker CLI to build images with and whether it
// uses BuildKit. BuildKit runs no container for a Dockerfile's metadata
// instructions; the legacy builder runs one each, which costs a copy of the
// whole image per instruction on the vfs storage driver (measured here: the
// Node image in 12 s with BuildKit, 100 s without). A CLI from before
// Docker 23 has BuildKit built in (DOCKER_BUILDKIT=1); a later one needs
// its buildx plugin. Debian's docker.io (20.10) is /usr/bin/docker.
func buildCLI(t *testing.T, docker string) (string, bool) {
	t.Helper()
	if exec.Command(docker, "buildx", "version").Run() == nil {
		return docker, true
	}
	for _, c := range []string{docker, "/usr/bin/docker"} {
		out, err := exec.Command(c, "version", "--format", "{{.Client.Version}}").Output()
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(out))
		major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if err == nil && major < 23 {
			t.Logf("building with %s (client %s) and BuildKit", c, v)
			return c, true
		}
	}
	t.Logf("building with %s and the legacy builder: no buildx plugin, and no docker CLI before 23 with BuildKit built in (slow on the vfs storage driver)", docker)
	return docker, false
}

func testImage(t *testing.T, docker, cli string, buildkit bool, lang string, c containerCase) {
	start := time.Now()
	run := newRun(t, docker)
	image := "oe-rt-test/" + lang + ":" + run

	dir := filepath.Join(t.TempDir(), "ct-"+lang)
	sh(t, filepath.Dir(dir), 30*time.Second, oeRT, "new", "ct-"+lang, "--lang", lang, "--dir", dir)

	// The image, with the project's own make docker.
	flags := labels(run)
	if c.base != "" {
		flags = append(flags, "--build-arg", "BASE="+baseImage(t, c.base))
	}
	if c.network != "" {
		flags = append(flags, "--network", c.network)
	}
	built := time.Now()
	sh(t, dir, 10*time.Minute, "env", buildkitEnv(buildkit), "make", "docker", "DOCKER="+cli, "IMAGE="+image, "DOCKER_FLAGS="+strings.Join(flags, " "))
	t.Logf("%s: image built in %s", lang, time.Since(built).Round(time.Millisecond))

	checkImageConfig(t, docker, image, t.Errorf)
	_, report := conformImage(t, lang, image, dir, c)
	requireAllPassed(t, report, true)
	runAlone(t, docker, run, image)
	t.Logf("%s: generated, built, conformed and run alone in %s", lang, time.Since(start).Round(time.Second))
}

// conformSlots bounds the conform --image runs at once: one, while the
// other images build and the lighter container tests run. Each runs the
// whole suite, with its timing checks and a time budget that a starved
// machine does not stretch: on the 2-core development machine, three at
// once (and two at once) beside the other container tests, at a load of
// 14 to 21 with other work, ran the budget out before the last instances
// started (start.address-aliases, config.baetyl-forms not run).
var conformSlots = make(chan struct{}, 1)

// conformImage runs `oe-rt conform --image image --profile baetyl --strict`
// with the limits of the master's examples (conform's defaults in container
// mode: 50 MiB, 20 pids) and returns its output and its JUnit report. The
// configuration it gives is in the forms of Baetyl's example (as the
// master mounts it): the fixtures under names only it declares (mounted-*,
// so that a runtime reading the copy baked into its image answers
// NOT_FOUND), a relative codedir (var/db/baetyl/function-fixtures, the
// project's fixtures, which conform mounts at /var/db/baetyl/...), and
// logger.path var/log/baetyl/service.log, which the image's user cannot
// create: the runtime must say so and serve. extra are more flags.
func conformImage(t *testing.T, lang, image, project string, c containerCase, extra ...string) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "baetyl")
	var yml strings.Builder
	yml.WriteString("# Baetyl's example forms (docs/container.md)\nfunctions:\n")
	args := []string{"conform", "--image", image, "--profile", "baetyl", "--strict"}
	for _, role := range fixtureRoles {
		fmt.Fprintf(&yml, "  - name: mounted-%s\n    handler: %s\n", role, c.handler(role))
		if c.code != "" {
			yml.WriteString("    codedir: var/db/baetyl/function-fixtures\n")
		}
		args = append(args, "--function", role+"=mounted-"+role)
	}
	yml.WriteString("logger:\n  path: var/log/baetyl/service.log\n")
	config := filepath.Join(dir, "etc", "baetyl", "service.yml")
	if err := os.MkdirAll(filepath.Dir(config), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, []byte(yml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if c.code != "" {
		// A copy: conform mounts what --dir holds at the codedir.
		code := filepath.Join(dir, "var", "db", "baetyl", "function-fixtures")
		if err := os.MkdirAll(filepath.Dir(code), 0o755); err != nil {
			t.Fatal(err)
		}
		sh(t, dir, time.Minute, "cp", "-R", filepath.Join(project, c.code), code)
	}
	report := filepath.Join(t.TempDir(), "conform-image.xml")
	args = append(append(args, "--config", config, "--dir", dir, "--junit", report), extra...)
	waited := time.Now()
	conformSlots <- struct{}{}
	defer func() { <-conformSlots }()
	if w := time.Since(waited); w > time.Second {
		t.Logf("%s: waited %s for a conform slot", lang, w.Round(time.Second))
	}
	started := time.Now()
	out := shAllowFail(t, dir, 8*time.Minute, oeRT, args...)
	t.Logf("%s: conform --image --strict in %s:\n%s", lang, time.Since(started).Round(time.Second), out)
	return out, report
}

// TestServeImage builds oe-rt serve's image (serve/Dockerfile, FROM scratch
// with a static oe-rt, as docs/serve.md says) and runs it as
// TestTemplateImages runs the templates' images.
func TestServeImage(t *testing.T) {
	docker, cli, buildkit := imageTest(t, "builds and runs oe-rt serve's image on a Docker engine")
	run := newRun(t, docker)
	image := "oe-rt-test/serve:" + run
	dist := staticOERT(t)
	args := append([]string{"build", "--file", filepath.Join(repoRoot(t), "serve", "Dockerfile"), "--network", "none", "--tag", image}, labels(run)...)
	sh(t, dist, 5*time.Minute, "env", append([]string{buildkitEnv(buildkit), cli}, append(args, dist)...)...)
	// Without functions in its configuration serve offers the fixtures,
	// echo among them; with the mounted one, only mounted-echo.
	runLikeBaetyl(t, docker, run, image, "echo", "", "echo", 10, t.Errorf)
}

// TestImageChecksCatchHostileImages gives runLikeBaetyl two images that
// would fool a weaker test, each made of a static oe-rt serve: one starts
// serve under a `sh -c` that does not exec (the shell is PID 1, has no
// default action for SIGTERM and is killed at the grace: 137); one works
// in /app and reads a configuration baked into the image instead of the
// mounted one. The checks must name each fault.
func TestImageChecksCatchHostileImages(t *testing.T) {
	docker, cli, buildkit := imageTest(t, "builds and runs hostile images on a Docker engine")
	dist := staticOERT(t)
	baked := "functions:\n  - {name: mounted-echo, handler: echo}\n  - {name: echo, handler: echo}\n"
	if err := os.WriteFile(filepath.Join(dist, "service.yml"), []byte(baked), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, dockerfile string
		want             []string
		// conform: what conformImage's run must say (nil: not run).
		conform []string
	}{
		{"sh -c without exec", "ARG BASE\nFROM ${BASE}\nCOPY oe-rt /oe-rt\nUSER 65534:65534\nWORKDIR /\nENTRYPOINT /oe-rt serve; exit $?\n",
			[]string{"not an exec-form one", "exit code 137"}, nil},
		{"baked configuration", "FROM scratch\nCOPY oe-rt /oe-rt\nCOPY service.yml /app/etc/baetyl/service.yml\nUSER 65534:65534\nWORKDIR /app\nENTRYPOINT [\"/oe-rt\", \"serve\"]\n",
			[]string{`working directory "/app"`, "want NOT_FOUND", "lacks \"logging to stderr instead\""},
			// It serves the baked mounted-echo, not the other fixtures
			// only the mounted configuration declares.
			[]string{"FAILED", `"mounted-context" answered NOT_FOUND`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			run := newRun(t, docker)
			image := "oe-rt-test/hostile:" + run
			df := filepath.Join(t.TempDir(), "Dockerfile")
			if err := os.WriteFile(df, []byte(tt.dockerfile), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"build", "--file", df, "--network", "none", "--tag", image}, labels(run)...)
			if strings.Contains(tt.dockerfile, "BASE") {
				args = append(args, "--build-arg", "BASE="+baseImage(t, "python"))
			}
			sh(t, dist, 5*time.Minute, "env", append([]string{buildkitEnv(buildkit), cli}, append(args, dist)...)...)
			var problems []string
			// A short grace: the shell never stops, so it only sets
			// how long the test waits for the kill.
			runLikeBaetyl(t, docker, run, image, "echo", "", "echo", 3, func(format string, args ...any) {
				problems = append(problems, fmt.Sprintf(format, args...))
			})
			all := strings.Join(problems, "\n")
			for _, want := range tt.want {
				if !strings.Contains(all, want) {
					t.Errorf("the checks missed %q; they found:\n%s", want, all)
				}
			}
			if tt.conform == nil {
				return
			}
			// TestTemplateImages's conform run must fail it too; a
			// check on the main instance is enough to show it.
			out, _ := conformImage(t, "hostile", image, dist, containerCase{}, "--run", "context.metadata")
			for _, want := range tt.conform {
				if !strings.Contains(out, want) {
					t.Errorf("conform --image said nothing of %q:\n%s", want, out)
				}
			}
		})
	}
}

// static is the static oe-rt the container tests share: built once (a
// whole build of oe-rt costs a core for half a minute, beside the
// conform runs), removed by TestMain.
var static struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// staticOERT builds a static oe-rt (CGO_ENABLED=0, as serve/Dockerfile
// wants it) once, and returns a directory of the test's own that holds it
// (a hard link, or a copy), to build an image from.
func staticOERT(t *testing.T) string {
	t.Helper()
	static.once.Do(func() {
		static.dir, static.err = os.MkdirTemp("", "oe-rt-e2e-static-")
		if static.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		gobuild := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(static.dir, "oe-rt"), "github.com/oe-rt/oe-rt/cmd/oe-rt")
		gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
		static.out, static.err = gobuild.CombinedOutput()
	})
	if static.err != nil {
		t.Fatalf("go build a static oe-rt: %v\n%s", static.err, static.out)
	}
	dist := t.TempDir()
	bin := filepath.Join(dist, "oe-rt")
	if err := os.Link(filepath.Join(static.dir, "oe-rt"), bin); err != nil {
		sh(t, dist, time.Minute, "cp", filepath.Join(static.dir, "oe-rt"), bin)
	}
	return dist
}

// removeStatic removes the static oe-rt, if a test built it.
func removeStatic() {
	if static.dir != "" {
		os.RemoveAll(static.dir)
	}
}

func buildkitEnv(on bool) string {
	if on {
		return "DOCKER_BUILDKIT=1"
	}
	return "DOCKER_BUILDKIT=0"
}

// newRun names one test's Docker objects and removes them when the test
// ends, also when it fails, then checks that none is left.
func newRun(t *testing.T, docker string) string {
	t.Helper()
	run := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	name := "oe-rt-test-" + run
	// Registered first, so it runs last: nothing of this run is left.
	t.Cleanup(func() { requireNothingLeft(t, docker, run) })
	t.Cleanup(func() {
		quiet(docker, "rm", "--force", "--volumes", name)
		filter := "label=" + runLabel + "=" + run
		for _, kind := range [][]string{{"ps", "--all"}, {"network", "ls"}, {"image", "ls"}} {
			out, _ := exec.Command(docker, append(kind, "--quiet", "--filter", filter)...).Output()
			for _, id := range strings.Fields(string(out)) {
				switch kind[0] {
				case "ps":
					quiet(docker, "rm", "--force", "--volumes", id)
				case "network":
					quiet(docker, "network", "rm", id)
				default:
					quiet(docker, "image", "rm", "--force", id)
				}
			}
		}
	})
	return run
}

// labels are the flags that label a Docker object as the run's.
func labels(run string) []string {
	return []string{"--label", testLabel + "=1", "--label", runLabel + "=" + run}
}

// runLikeBaetyl runs image as a Baetyl 1.0 master runs an instance in docker
// mode, with Baetyl's example configuration as the master mounts it: a
// function mounted-echo that only this file declares (handler: handler), a
// relative codedir whose directory code is mounted where it names (code
// "": none), and a log file under var/log/baetyl, which user 65534 cannot
// create in /. It calls mounted-echo at the container's IP, port 50051,
// requires NOT_FOUND for notFound (a function the image's own configuration
// declares), stops the container with a grace of grace seconds (docker
// stop) and requires that the runtime exited 0 by itself.
//
// It reports what it finds wrong with image through problem (t.Errorf for a
// template's image; a hostile image's test collects them) and returns.
func runLikeBaetyl(t *testing.T, docker, run, image, handler, code, notFound string, grace int, problem func(string, ...any)) {
	t.Helper()
	name := "oe-rt-test-" + run
	checkImageConfig(t, docker, image, problem)
	confDir := filepath.Join(t.TempDir(), "function-conf")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(confDir, "service.yml")
	yml := fmt.Sprintf(`functions:
  - name: mounted-echo
    handler: %s
    codedir: var/db/baetyl/function-echo
logger:
  path: var/log/baetyl/service.log
  level: debug
`, handler)
	if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}

	sh(t, confDir, time.Minute, docker, append(append([]string{"network", "create"}, labels(run)...), name)...)
	const anyAddr = "0.0.0.0:50051"
	args := append([]string{"run", "--detach", "--name", name}, labels(run)...)
	args = append(args,
		"--network", name,
		"--memory", "50m", "--pids-limit", "20", "--restart", "no",
		"--env", "BAETYL_SERVICE_INSTANCE_ADDRESS="+anyAddr,
		"--env", "OPENEDGE_SERVICE_INSTANCE_ADDRESS="+anyAddr,
		"--env", "OPENEDGE_SERVICE_ADDRESS="+anyAddr,
		"--env", "BAETYL_SERVICE_NAME=function-ct",
		"--env", "BAETYL_SERVICE_INSTANCE_NAME="+name,
		"--env", "OPENEDGE_SERVICE_INSTANCE_NAME="+name,
		"--env", "BAETYL_SERVICE_MODE=docker",
		"--env", "OPENEDGE_RUNNING_MODE=docker",
		"--volume", conf+":/etc/baetyl/service.yml:ro",
	)
	if code != "" {
		args = append(args, "--volume", code+":/var/db/baetyl/function-echo:ro")
	}
	started := time.Now()
	sh(t, confDir, time.Minute, docker, append(args, image)...)
	ip := strings.TrimSpace(sh(t, confDir, time.Minute, docker, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
	if ip == "" {
		t.Fatalf("the container has no IP address on network %s:\n%s", name, logs(docker, name))
	}
	address := ip + ":50051"

	payload := "hello from " + image
	out, stderr, err := call(2*time.Minute, "--profile", "baetyl", "--wait", "90s", "--address", address, "mounted-echo", payload)
	if err != nil || out != payload {
		problem("oe-rt call mounted-echo at %s: %v, %q; want %q\n%s\nthe container's log:\n%s", address, err, out, payload, stderr, logs(docker, name))
	}
	t.Logf("%s: first answer %s after docker run", image, time.Since(started).Round(time.Millisecond))
	_, stderr, err = call(time.Minute, "--profile", "baetyl", "--address", address, notFound, "{}")
	if err == nil || !strings.Contains(stderr, "NotFound") && !strings.Contains(stderr, "NOT_FOUND") {
		problem("%s, not declared in the mounted configuration: %v, %q; want NOT_FOUND (the runtime must read the mounted /etc/baetyl/service.yml)", notFound, err, stderr)
	}

	stopped := time.Now()
	sh(t, confDir, time.Minute, docker, "stop", "--time", strconv.Itoa(grace), name)
	stopTime := time.Since(stopped)
	var state struct {
		Running   bool
		OOMKilled bool
		ExitCode  int
	}
	inspect(t, docker, name, "{{json .State}}", &state)
	log := logs(docker, name)
	t.Logf("%s: stopped in %s; the container's log:\n%s", image, stopTime.Round(time.Millisecond), log)
	if state.Running || state.OOMKilled || state.ExitCode != 0 {
		problem("after docker stop (%d s grace) the runtime must exit 0 by itself; state: running %v, OOM-killed %v, exit code %d (137: killed at the grace)", grace, state.Running, state.OOMKilled, state.ExitCode)
	}
	for _, want := range []string{"var/log/baetyl/service.log", "logging to stderr instead"} {
		if !strings.Contains(log, want) {
			problem("the container's log lacks %q: a logger.path the runtime cannot open must be reported on stderr", want)
		}
	}
}

// runAlone runs image with no configuration mounted and no variable set,
// as `docker run IMAGE` would (on a network of its own, under the same limits):
// the runtime must serve its own copy of etc/openedge/service.yml, the
// fixtures and sayhi found where the image put them, on the address the
// image sets (0.0.0.0:50051).
func runAlone(t *testing.T, docker, run, image string) {
	t.Helper()
	name := "oe-rt-test-" + run + "-alone"
	sh(t, os.TempDir(), time.Minute, docker, append(append([]string{"network", "create"}, labels(run)...), name)...)
	args := append([]string{"run", "--detach", "--name", name}, labels(run)...)
	args = append(args, "--network", name, "--memory", "50m", "--pids-limit", "20", image)
	sh(t, os.TempDir(), time.Minute, docker, args...)
	ip := strings.TrimSpace(sh(t, os.TempDir(), time.Minute, docker, "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name))
	address := ip + ":50051"
	out, stderr, err := call(2*time.Minute, "--wait", "90s", "--address", address, "echo", "alone")
	if err != nil || out != "alone" {
		t.Errorf("docker run %s alone: echo: %v, %q\n%s\nthe container's log:\n%s", image, err, out, stderr, logs(docker, name))
	}
	if out, stderr, err := call(time.Minute, "--address", address, "sayhi", `{"name":"oe-rt"}`); err != nil || out == "" {
		t.Errorf("docker run %s alone: sayhi: %v, %q\n%s\nthe container's log:\n%s", image, err, out, stderr, logs(docker, name))
	}
	sh(t, os.TempDir(), time.Minute, docker, "stop", "--time", "10", name)
	var code int
	inspect(t, docker, name, "{{json .State.ExitCode}}", &code)
	if code != 0 {
		t.Errorf("docker run %s alone: exit code %d after docker stop, want 0", image, code)
	}
}

// call runs oe-rt call with args and returns its stdout and stderr.
func call(limit time.Duration, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, oeRT, append([]string{"call"}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

var baseMu sync.Mutex

// baseImage makes (or finds) a local base image with scripts/base-images.sh
// and returns its name.
func baseImage(t *testing.T, which string) string {
	t.Helper()
	// The tests run in parallel: one builds a missing base, the others
	// wait and find it.
	baseMu.Lock()
	defer baseMu.Unlock()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "base-images.sh"), which)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		msg := fmt.Sprintf("scripts/base-images.sh %s: %v\n%s", which, err, stderr.String())
		if os.Getenv(requireDockerEnv) == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	t.Logf("scripts/base-images.sh %s: %s in %s", which, strings.TrimSpace(stderr.String()), time.Since(start).Round(time.Millisecond))
	return strings.TrimSpace(string(out))
}

// checkImageConfig requires what the master relies on: an exec-form
// entrypoint (the runtime is PID 1 and gets SIGTERM), the working
// directory / (relative paths resolve where the master mounts), a user
// that is not root.
func checkImageConfig(t *testing.T, docker, image string, problem func(string, ...any)) {
	t.Helper()
	var cfg struct {
		Entrypoint []string
		WorkingDir string
		User       string
	}
	inspect(t, docker, image, "{{json .Config}}", &cfg)
	var size int64
	inspect(t, docker, image, "{{json .Size}}", &size)
	t.Logf("image %s: entrypoint %q, working directory %q, user %q, %.1f MB", image, cfg.Entrypoint, cfg.WorkingDir, cfg.User, float64(size)/1e6)
	if len(cfg.Entrypoint) == 0 || cfg.Entrypoint[0] == "/bin/sh" || cfg.Entrypoint[0] == "sh" {
		problem("the entrypoint %q is not an exec-form one: a shell as PID 1 does not pass SIGTERM on", cfg.Entrypoint)
	}
	if cfg.WorkingDir != "/" {
		problem("working directory %q, want /: the master mounts the configuration at /etc/baetyl and relative codedirs resolve from here", cfg.WorkingDir)
	}
	if u := strings.SplitN(cfg.User, ":", 2)[0]; u == "" || u == "0" || u == "root" {
		problem("user %q: the image should run as an unprivileged user", cfg.User)
	}
}

// inspect decodes `docker inspect --format FORMAT what` into v.
func inspect(t *testing.T, docker, what, format string, v any) {
	t.Helper()
	out, err := exec.Command(docker, "inspect", "--format", format, what).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", what, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("docker inspect %s: %v in %s", what, err, out)
	}
}

// logs returns a container's stdout and stderr.
func logs(docker, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, docker, "logs", name).CombinedOutput()
	return string(out)
}

// quiet runs a docker command for cleaning up; what it says does not matter.
func quiet(docker string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = exec.CommandContext(ctx, docker, args...).Run()
}

// requireNothingLeft fails the test when a container, network or image of
// this run is still there.
func requireNothingLeft(t *testing.T, docker, run string) {
	t.Helper()
	filter := "label=" + runLabel + "=" + run
	for _, what := range [][]string{
		{"ps", "--all", "--quiet", "--filter", filter},
		{"network", "ls", "--quiet", "--filter", filter},
		{"image", "ls", "--quiet", "--filter", filter},
	} {
		out, err := exec.Command(docker, what...).Output()
		if err != nil {
			t.Errorf("docker %s: %v", strings.Join(what, " "), err)
		} else if s := strings.TrimSpace(string(out)); s != "" {
			t.Errorf("left behind (docker %s): %s", strings.Join(what, " "), s)
		}
	}
}
