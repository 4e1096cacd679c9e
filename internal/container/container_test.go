package container_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/conformance"
	ctr "github.com/oe-rt/oe-rt/internal/container"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// The container tests run conform's container mode on a real Docker
// engine (DOCKER_HOST, or the default socket) against images built here
// FROM scratch with a static fake runtime (testdata/fake). With no engine
// they are skipped, saying why, unless OE_RT_TEST_REQUIRE_DOCKER=1 makes
// that a failure. The fake's image is kept on the engine, tagged by the
// binary's hash, so that the next run builds nothing; every container and
// network a test makes is removed, and each test checks that none of
// conform's is left.

func TestMain(m *testing.M) {
	launch.Init()
	if img := os.Getenv("OE_RT_TEST_CONFORM_IMAGE"); img != "" {
		// The helper of TestContainerKilledConform: a conform that runs
		// until it is killed.
		l, err := ctr.New(context.Background(), ctr.Options{Image: img, Memory: 50 << 20, Pids: 20})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		cfg := conformance.NewConfig(img, "serve")
		cfg.Launcher = l
		_, _ = conformance.Run(context.Background(), cfg)
		l.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// engine returns a client of the engine, or skips (fails, with
// OE_RT_TEST_REQUIRE_DOCKER=1) when none answers.
func engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := ctr.Connect(context.Background())
	if err != nil {
		if os.Getenv("OE_RT_TEST_REQUIRE_DOCKER") == "1" {
			t.Fatalf("OE_RT_TEST_REQUIRE_DOCKER=1 and %v", err)
		}
		t.Skipf("container mode needs a Docker engine: %v (OE_RT_TEST_REQUIRE_DOCKER=1 makes this a failure)", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var fakeOnce struct {
	sync.Once
	tag string
	err error
}

// fakeImage builds the fake runtime (static) and its image, once a test
// binary, unless the engine has it already.
func fakeImage(t *testing.T, cli *client.Client) string {
	t.Helper()
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "oe-rt-fake-")
		if err != nil {
			fakeOnce.err = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "fake")
		cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/fake")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fakeOnce.err = fmt.Errorf("build the fake: %v\n%s", err, out)
			return
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			fakeOnce.err = err
			return
		}
		sum := sha256.Sum256(b)
		tag := "oe-rt-test-fake:" + hex.EncodeToString(sum[:6])
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := cli.ImageInspect(ctx, tag); err == nil {
			fakeOnce.tag = tag
			return
		}
		fakeOnce.err = ctr.BuildImage(ctx, cli, tag, "FROM scratch\nCOPY fake /fake\nENTRYPOINT [\"/fake\"]\nCMD [\"serve\"]\n",
			[]ctr.File{{Name: "fake", Mode: 0o755, Data: b}})
		fakeOnce.tag = tag
	})
	require.NoError(t, fakeOnce.err)
	return fakeOnce.tag
}

// conform runs the suite in container mode on the fake in mode (its
// command), with the checks run, and checks that nothing of the run is
// left on the engine.
func conform(t *testing.T, mode string, run ...string) *conformance.Report {
	t.Helper()
	cli := engine(t)
	img := fakeImage(t, cli)
	l, err := ctr.New(context.Background(), ctr.Options{Image: img, Memory: 50 << 20, Pids: 20})
	require.NoError(t, err)
	cfg := conformance.NewConfig(img, mode)
	cfg.Launcher = l
	cfg.Run = run
	cfg.Grace = 3 * time.Second
	cfg.StartTimeout = 20 * time.Second
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, l.Close())
	require.NoError(t, err)
	assertNothingLeft(t, cli, l.Run())
	return rep
}

// assertNothingLeft: no container or network of the launcher's run is on
// the engine.
func assertNothingLeft(t *testing.T, cli *client.Client, run string) {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", ctr.LabelRun+"="+run))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	require.NoError(t, err)
	assert.Empty(t, cs, "containers of conform's left")
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	require.NoError(t, err)
	assert.Empty(t, ns, "networks of conform's left")
}

func result(t *testing.T, rep *conformance.Report, id string) conformance.Result {
	t.Helper()
	for _, r := range rep.Checks {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no result for %s", id)
	return conformance.Result{}
}

// TestContainerReferencePasses: the good runtime (oe-rt serve's server,
// static, FROM scratch) passes every check in its container.
func TestContainerReferencePasses(t *testing.T) {
	rep := conform(t, "serve")
	for _, r := range rep.Checks {
		if r.Status == conformance.Fail && r.Level == conformance.MUST {
			t.Errorf("%s: %s", r.ID, r.Message)
		}
	}
	assert.Equal(t, conformance.Passed, rep.Verdict, "%s", rep.Reason)
	assert.Equal(t, conformance.Pass, result(t, rep, "shutdown.sigterm").Status)
	assert.Equal(t, conformance.Pass, result(t, rep, "start.scope").Status)
	require.NotNil(t, rep.Runtime.Image)
	assert.True(t, strings.HasPrefix(rep.Runtime.Image.ID, "sha256:"), rep.Runtime.Image.ID)
	assert.Equal(t, []string{"/fake"}, rep.Runtime.Image.Entrypoint)
	assert.Positive(t, rep.Runtime.Image.Size)
	require.NotNil(t, rep.Runtime.CreateToAnswerMS)
	assert.Positive(t, *rep.Runtime.CreateToAnswerMS)
}

// TestContainerNoSigtermHandler: a runtime that leaves SIGTERM at its
// default action never gets it as PID 1; shutdown.sigterm says why.
func TestContainerNoSigtermHandler(t *testing.T) {
	t.Parallel()
	rep := conform(t, "no-sigterm", "shutdown.sigterm")
	r := result(t, rep, "shutdown.sigterm")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, "as PID 1 your process has no default action for SIGTERM: handle it, or `exec` from your entrypoint script, or run under an init")
	assert.Contains(t, r.Message, `"/fake no-sigterm"`)
	assert.Equal(t, conformance.Failed, rep.Verdict)
}

// TestContainerNonExecWrapper: a wrapper that runs the runtime as its
// child (what `sh -c ./runtime` does) and does not catch SIGTERM: the
// runtime never hears of it.
func TestContainerNonExecWrapper(t *testing.T) {
	t.Parallel()
	rep := conform(t, "wrapper", "shutdown.sigterm")
	r := result(t, rep, "shutdown.sigterm")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, "as PID 1 your process has no default action for SIGTERM")
	assert.Contains(t, r.Message, `"/fake wrapper"`)
}

// TestContainerLoopbackBinder: a runtime that binds 127.0.0.1 in its
// container cannot be reached; start.listen says so at once, not after
// the start timeout.
func TestContainerLoopbackBinder(t *testing.T) {
	t.Parallel()
	start := time.Now()
	rep := conform(t, "loopback", "start.listen")
	r := result(t, rep, "start.listen")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, "it listens on 127.0.0.1:50051, not on 0.0.0.0:50051")
	assert.Contains(t, r.Message, "a socket bound to 127.0.0.1 or to a port of the runtime's own is not reachable")
	assert.Less(t, time.Since(start), 20*time.Second, "it waited the start timeout out")
}

// TestContainerMemoryHog: a runtime that takes 200 MiB under the 50 MiB
// limit is killed by the OOM killer, as the engine reports it.
func TestContainerMemoryHog(t *testing.T) {
	t.Parallel()
	rep := conform(t, "hog", "run.alive", "resources.limits")
	r := result(t, rep, "resources.limits")
	assert.Equal(t, conformance.Warn, r.Status) // a SHOULD
	assert.Contains(t, r.Message, "killed by the kernel's OOM killer under memory.limit_in_bytes 50 MiB")
	assert.Contains(t, result(t, rep, "run.alive").Message, "ended by the enforced limits")
}

// TestContainerSweep: what an owner that is gone left (a container, a
// network) is removed by the next launcher; what a live owner has is not.
func TestContainerSweep(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	img := fakeImage(t, cli)
	ctx := context.Background()
	dead := "4194305.1" // above any pid_max: never a running process
	nw, err := cli.NetworkCreate(ctx, "oe-rt-test-dead-"+fmt.Sprint(os.Getpid()), network.CreateOptions{Labels: map[string]string{ctr.LabelOwner: dead}})
	require.NoError(t, err)
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: map[string]string{ctr.LabelOwner: dead}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	require.NoError(t, err)
	live, err := cli.NetworkCreate(ctx, "oe-rt-test-live-"+fmt.Sprint(os.Getpid()), network.CreateOptions{Labels: map[string]string{ctr.LabelOwner: ctr.OwnerValue()}})
	require.NoError(t, err)
	defer cli.NetworkRemove(ctx, live.ID)

	// Another test's launcher may sweep them first.
	_, err = ctr.Sweep(ctx, cli)
	require.NoError(t, err)
	_, err = cli.ContainerInspect(ctx, c.ID)
	assert.True(t, client.IsErrNotFound(err), "the dead owner's container is still there: %v", err)
	_, err = cli.NetworkInspect(ctx, nw.ID, network.InspectOptions{})
	assert.True(t, client.IsErrNotFound(err), "the dead owner's network is still there: %v", err)
	_, err = cli.NetworkInspect(ctx, live.ID, network.InspectOptions{})
	assert.NoError(t, err, "a live owner's network was swept")
}

// TestContainerInterrupted: an interrupted run leaves nothing either.
func TestContainerInterrupted(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	img := fakeImage(t, cli)
	l, err := ctr.New(context.Background(), ctr.Options{Image: img, Memory: 50 << 20, Pids: 20})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := conformance.NewConfig(img, "serve")
	cfg.Launcher = l
	cfg.OnResult = func(conformance.Result) { cancel() } // at the first result
	rep, err := conformance.Run(ctx, cfg)
	cancel()
	require.NoError(t, l.Close())
	require.NoError(t, err)
	assert.Equal(t, conformance.Interrupted, rep.Verdict)
	assertNothingLeft(t, cli, l.Run())
}

// TestNoEngine: no engine at DOCKER_HOST is an error naming it.
func TestNoEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/oe-rt-test.sock")
	_, err := ctr.New(context.Background(), ctr.Options{Image: "x"})
	var ne *ctr.NoEngineError
	require.ErrorAs(t, err, &ne)
	assert.Contains(t, err.Error(), "unix:///nonexistent/oe-rt-test.sock (DOCKER_HOST)")
}

// TestContainerZombieMaker: a runtime that never waits for its children
// fills the pids limit with zombies; resources.threads counts them and
// says why.
func TestContainerZombieMaker(t *testing.T) {
	t.Parallel()
	rep := conform(t, "zombies", "resources.threads")
	r := result(t, rep, "resources.threads")
	assert.Equal(t, conformance.Warn, r.Status) // a SHOULD
	assert.Regexp(t, `pids\.max 20 refused \d+ thread or process creation`, r.Message)
	assert.Regexp(t, `\d+ of its tasks at its peak were zombies`, r.Message)
	assert.Contains(t, r.Message, "As PID 1 of its container the runtime is the parent of every orphan in it, and no init reaps them")
}

// TestContainerBench: bench --image's library path loads the runtime in
// its container and leaves nothing.
func TestContainerBench(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	img := fakeImage(t, cli)
	l, err := ctr.New(context.Background(), ctr.Options{Image: img})
	require.NoError(t, err)
	cfg := bench.NewConfig()
	cfg.Total = 200
	cfg.Launch = &bench.Launch{Command: []string{img, "serve"}, Launcher: l}
	rep, err := bench.Run(context.Background(), cfg)
	require.NoError(t, l.Close())
	require.NoError(t, err)
	assert.EqualValues(t, 200, rep.OK)
	require.NotNil(t, rep.Runtime)
	assert.Positive(t, rep.Runtime.PeakRSS)
	assert.NotContains(t, rep.Target, "127.0.0.1", "bench dialled the container's address")
	assertNothingLeft(t, cli, l.Run())
}

// TestContainerKilledConform: a conform killed (SIGKILL) while its
// containers run leaves them; the next launcher removes them, and only
// those of owners that are gone.
func TestContainerKilledConform(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	img := fakeImage(t, cli)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OE_RT_TEST_CONFORM_IMAGE="+img)
	require.NoError(t, cmd.Start())
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	ctx := context.Background()
	prefix := fmt.Sprintf("%d.", cmd.Process.Pid)
	owned := func() []string {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", ctr.LabelOwner))})
		require.NoError(t, err)
		var ids []string
		for _, c := range cs {
			if strings.HasPrefix(c.Labels[ctr.LabelOwner], prefix) {
				ids = append(ids, c.ID)
			}
		}
		return ids
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(owned()) == 0 {
		require.True(t, time.Now().Before(deadline), "the helper conform started no container within 2 minutes")
		time.Sleep(200 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	killed = true
	// Its containers stay until a sweep: this one, or that of another
	// test's launcher running beside it.
	_, err := ctr.Sweep(ctx, cli)
	require.NoError(t, err)
	assert.Empty(t, owned(), "the killed conform's containers are left after the sweep")
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", ctr.LabelOwner))})
	require.NoError(t, err)
	for _, n := range ns {
		assert.False(t, strings.HasPrefix(n.Labels[ctr.LabelOwner], prefix), "the killed conform's network %s is left", n.Name)
	}
}

// TestMissingImage: an image the engine does not have is an error that
// says conform pulls nothing, and the launcher leaves nothing behind.
func TestMissingImage(t *testing.T) {
	t.Parallel()
	engine(t)
	_, err := ctr.New(context.Background(), ctr.Options{Image: "oe-rt-test-no-such-image:1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `image "oe-rt-test-no-such-image:1" is not on the engine (conform pulls nothing: build or pull it first)`)
}

// TestContainerMounts: the configuration is mounted where the master
// mounts it (/etc/baetyl/service.yml) and the codedir it names at its
// path; a runtime that needs them starts with --config and does not
// without.
func TestContainerMounts(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	img := fakeImage(t, cli)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "var", "db", "baetyl", "code"), 0o755))
	config := filepath.Join(dir, "service.yml")
	require.NoError(t, os.WriteFile(config, []byte("functions:\n"+
		"  - name: echo\n    handler: echo\n    codedir: var/db/baetyl/code\n"+
		"  - name: context\n    handler: context\n  - name: none\n    handler: none\n"+
		"  - name: fail\n    handler: fail\n  - name: sleep\n    handler: sleep\n"), 0o644))
	run := func(config string) *conformance.Report {
		l, err := ctr.New(context.Background(), ctr.Options{Image: img, Memory: 50 << 20, Pids: 20})
		require.NoError(t, err)
		cfg := conformance.NewConfig(img, "config")
		cfg.Launcher = l
		cfg.Profile = conformance.ProfileBaetyl
		cfg.Dir, cfg.ConfigFile = dir, config
		cfg.Run = []string{"start.listen", "echo.json"}
		cfg.StartTimeout = 20 * time.Second
		rep, err := conformance.Run(context.Background(), cfg)
		require.NoError(t, l.Close())
		require.NoError(t, err)
		assertNothingLeft(t, cli, l.Run())
		return rep
	}
	rep := run(config)
	assert.Equal(t, conformance.Pass, result(t, rep, "start.listen").Status, result(t, rep, "start.listen").Message)
	assert.Equal(t, conformance.Pass, result(t, rep, "echo.json").Status)

	rep = run("")
	r := result(t, rep, "start.listen")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, "exited (exit status 1)")
}

// TestContainerMasterAPI: the master API's socket is mounted read-only at
// /var/run/baetyl.sock and a request through it is placed by the
// caller's host PID: rights.master-api judges it as natively.
func TestContainerMasterAPI(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	img := fakeImage(t, cli)
	l, err := ctr.New(context.Background(), ctr.Options{Image: img, Memory: 50 << 20, Pids: 20})
	require.NoError(t, err)
	cfg := conformance.NewConfig(img, "api")
	cfg.Launcher = l
	cfg.Profile = conformance.ProfileBaetyl
	cfg.Run = []string{"rights.master-api"}
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, l.Close())
	require.NoError(t, err)
	assertNothingLeft(t, cli, l.Run())
	r := result(t, rep, "rights.master-api")
	assert.Equal(t, conformance.Pass, r.Status, r.Message)
	assert.Contains(t, r.Message, "GET /v1/system/inspect by instance #1")
	assert.Contains(t, r.Message, "401 account unauthorized")
	require.NotEmpty(t, rep.Runtime.MasterAPI)
}

// TestContainerBadEntrypoint: an image whose entrypoint is not there
// cannot be started: conform says so (the engine's words) and leaves
// nothing.
func TestContainerBadEntrypoint(t *testing.T) {
	t.Parallel()
	cli := engine(t)
	ctx := context.Background()
	tag := "oe-rt-test-bad-entrypoint:1"
	require.NoError(t, ctr.BuildImage(ctx, cli, tag, "FROM scratch\nENTRYPOINT [\"/nonexistent\"]\n", nil))
	l, err := ctr.New(ctx, ctr.Options{Image: tag, Memory: 50 << 20, Pids: 20})
	require.NoError(t, err)
	cfg := conformance.NewConfig(tag)
	cfg.Launcher = l
	cfg.Run = []string{"start.listen"}
	_, err = conformance.Run(ctx, cfg)
	require.NoError(t, l.Close())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"/nonexistent": stat /nonexistent: no such file or directory`)
	assertNothingLeft(t, cli, l.Run())
}
