package conformance_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// requireLimitsEnv, when set (scripts/test.sh sets it where it runs as
// root), makes a machine that cannot enforce limits fail the tests that
// need them instead of skipping them: CI cannot pass without running them.
const requireLimitsEnv = "OE_RT_TEST_REQUIRE_LIMITS"

// enforcing skips the test, with the reason, where this machine cannot
// enforce limits (a failure with OE_RT_TEST_REQUIRE_LIMITS).
func enforcing(t *testing.T) string {
	t.Helper()
	kind, err := launch.CheckLimits()
	if err != nil {
		if os.Getenv(requireLimitsEnv) != "" {
			t.Fatalf("%s is set, but: %v", requireLimitsEnv, err)
		}
		t.Skipf("limits cannot be enforced here: %v", err)
	}
	return kind
}

// noLimitCgroupsLeft fails when a cgroup a launch of this process made is
// left, in any hierarchy.
func noLimitCgroupsLeft(t *testing.T) {
	t.Helper()
	assert.Empty(t, launchCgroups(), "cgroups left behind")
}

// launchCgroups lists the cgroups named after this process's launches.
func launchCgroups() []string {
	prefix := "oe-rt-launch." + strconv.Itoa(os.Getpid()) + "."
	var left []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), prefix) {
			left = append(left, path)
			return filepath.SkipDir
		}
		if strings.Count(path, "/") > 9 {
			return filepath.SkipDir
		}
		return nil
	})
	return left
}

// The reference runtime passes every check, resources.limits included,
// with the convention's limits enforced on each instance (cgroup v2 where
// it is delegated, cgroup v1 as root), each in a cgroup of its own.
func TestReferenceUnderEnforcedLimits(t *testing.T) {
	ran := false
	for _, mode := range []string{"v2", "v1"} {
		t.Run(mode, func(t *testing.T) {
			t.Setenv("OE_RT_LAUNCH_LIMITS", mode)
			if _, err := launch.CheckLimits(); err != nil {
				t.Skipf("cgroup %s cannot enforce limits here: %v", mode, err)
			}
			ran = true
			cfg := config(t, "serve")
			cfg.Strict = true
			cfg.CgroupLimits = true
			rep, err := conformance.Run(context.Background(), cfg)
			require.NoError(t, err)
			for _, r := range rep.Checks {
				assert.Equal(t, conformance.Pass, r.Status, "%s: %s", r.ID, r.Message)
			}
			assert.Len(t, rep.Checks, len(conformance.Catalog()), "every check ran")
			require.NotNil(t, rep.Resources)
			assert.Equal(t, "enforced", rep.Resources.Mode)
			assert.Equal(t, "cgroup "+mode, rep.Resources.Cgroup)
			require.NotNil(t, rep.Resources.Load, "the function manager's load ran")
			assert.GreaterOrEqual(t, rep.Resources.Load.Calls, 20)
			assert.Greater(t, rep.Resources.Load.LargestBytes, int64(3<<20))
			assert.Equal(t, rep.Resources.Load.Instance, rep.Resources.MemoryInstance, "the load decides the memory figure")
			roles := map[string]bool{}
			for _, in := range rep.Instances {
				roles[in.Role] = true
				require.NotNil(t, in.Resources, "instance #%d", in.N)
				assert.NotNil(t, in.Resources.Cgroup, "instance #%d ran in a cgroup of its own", in.N)
			}
			for _, role := range []string{"main", "shutdown", "life", "load", "alias OPENEDGE_SERVICE_ADDRESS", "alias OPENEDGE_SERVICE_INSTANCE_ADDRESS", "alias BAETYL_SERVICE_INSTANCE_ADDRESS", "config.baetyl-forms"} {
				assert.True(t, roles[role], "an instance %q, in cgroups of its own", role)
			}
			assert.Len(t, roles, 8)
			mem := byID(rep)["resources.memory"].Message
			assert.Regexp(t, `^enforced \(memory\.(max|limit_in_bytes) 50 MiB\): the function manager's load, 24 calls one at a time up to 3\.9 MiB, ran without a kill on #\d: cgroup peak \d+\.\d MiB, .*, no OOM kill; the rest of the suite fit too \(#1 main \d+\.\d MiB, #2 shutdown \d+\.\d MiB(, #\d (alias [A-Z_]+|life|config\.baetyl-forms) \d+\.\d MiB)*\)$`, mem)
			assert.Regexp(t, `each of the \d+ instances ran in a cgroup `+mode+` of its own`, byID(rep)["resources.limits"].Message)
			assertNoChildren(t)
			noLimitCgroupsLeft(t)
		})
	}
	if !ran && os.Getenv(requireLimitsEnv) != "" {
		t.Fatalf("%s is set, but neither cgroup v2 nor cgroup v1 can enforce limits here (see the skips)", requireLimitsEnv)
	}
}

// A runtime that allocates past the limit while answering echo.large is
// killed by the OOM killer; the check whose call was in flight and
// resources.limits say so, naming the limit, the cgroup's peak and the
// call. The function manager's load, which sends a large echo too, fails
// resources.memory the same way. run.alive leaves the kills to them.
func TestOOMKillIsNamed(t *testing.T) {
	enforcing(t)
	cfg := config(t, "oom-on-large")
	cfg.CgroupLimits = true
	cfg.Run = []string{"echo.large", "run.alive", "resources.memory", "resources.limits"}
	cfg.Strict = true
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	large := byID(rep)["echo.large"]
	assert.Equal(t, conformance.Warn, large.Status)
	assert.Regexp(t, `^the runtime was killed by the kernel's OOM killer under memory\.(max|limit_in_bytes) 50 MiB \(cgroup peak (49|50)\.\d MiB\) while answering the echo of 3\.9 MiB$`, large.Message)
	lim := byID(rep)["resources.limits"]
	assert.Equal(t, conformance.Warn, lim.Status)
	assert.Contains(t, lim.Message, "instance #1 (main) was killed by the kernel's OOM killer under memory.")
	assert.Contains(t, lim.Message, "while answering echo.large's 3.9 MiB call to echo")
	mem := byID(rep)["resources.memory"]
	assert.Equal(t, conformance.Warn, mem.Status)
	assert.Regexp(t, `^enforced: the runtime was killed by the kernel's OOM killer under memory\.(max|limit_in_bytes) 50 MiB \(cgroup peak (49|50)\.\d MiB\) while answering the function manager's load's 3\.9 MiB call to echo$`, mem.Message)
	alive := byID(rep)["run.alive"]
	assert.Equal(t, conformance.Pass, alive.Status, "an OOM kill under enforced limits is the resource checks' to judge: %s", alive.Message)
	assert.Regexp(t, `; #1, #\d ended by the enforced limits \(see resources.limits\)$`, alive.Message)
	assert.NotContains(t, messages(rep), "killed by SIGKILL")
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assertNoChildren(t)
	noLimitCgroupsLeft(t)
}

// A runtime that starts 40 threads cannot start under pids.max 20:
// start.listen says why, from the kernel's count and the runtime's
// stderr.
func TestRefusedThreadsAreNamed(t *testing.T) {
	enforcing(t)
	cfg := config(t, "threads-at-start")
	cfg.CgroupLimits = true
	cfg.Run = []string{"start.listen", "resources.threads", "resources.limits"}
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	listen := byID(rep)["start.listen"]
	assert.Equal(t, conformance.Fail, listen.Status)
	assert.Contains(t, listen.Message, "pids.max 20 refused")
	assert.Contains(t, listen.Message, "thread or process creation")
	assert.Regexp(t, `stderr: .*(pthread_create failed|failed to create new OS thread)`, listen.Message)
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assertNoChildren(t)
	noLimitCgroupsLeft(t)
}

// Measured, memory is judged by what a limit cannot take back: a runtime
// whose RSS is mostly a mapped file (64 MiB) passes, and the message
// splits its RSS. Run alone, the check drives the runtime with the
// function manager's load.
func TestMeasuredMemoryIsUnreclaimable(t *testing.T) {
	cfg := config(t, "file-pages")
	cfg.Run = []string{"resources.memory"}
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	r := byID(rep)["resources.memory"]
	assert.Equal(t, conformance.Pass, r.Status, r.Message)
	assert.Greater(t, rep.Runtime.PeakRSS, int64(64<<20), "the mapped file counts in RSS")
	assert.Regexp(t, `^measured, not enforced: peak unreclaimable memory \d+\.\d MiB \(RssAnon \+ RssShmem, instance #\d\) within 50 MiB; RSS \d+\.\d MiB = anon \d+\.\d \+ file (6\d|[7-9]\d)\.\d \+ shmem \d+\.\d MiB; driven by the function manager's load \(#\d: 2\d calls one at a time, up to 3\.9 MiB\)$`, r.Message)
	require.NotNil(t, rep.Resources)
	assert.Equal(t, "measured", rep.Resources.Mode)
	require.NotNil(t, rep.Resources.Load)
	assert.GreaterOrEqual(t, rep.Resources.Load.Calls, 20)
	assert.Less(t, rep.Resources.Memory, int64(50<<20))
	assert.False(t, rep.Resources.FewSamples, "%d samples", rep.Resources.Samples)
	assertNoChildren(t)
}

// Anonymous memory over the budget still fails, measured.
func TestMeasuredMemoryOverBudget(t *testing.T) {
	cfg := config(t, "memory") // 80 MiB touched
	cfg.Run = []string{"resources.memory"}
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	r := byID(rep)["resources.memory"]
	assert.Equal(t, conformance.Warn, r.Status, r.Message)
	assert.Regexp(t, `^measured, not enforced: peak unreclaimable memory (8\d|9\d|1\d\d)\.\d MiB \(RssAnon \+ RssShmem, instance #\d\) over 50 MiB`, r.Message)
	assertNoChildren(t)
}

// Limits asked for where the machine cannot enforce them: resources.limits
// is not run and says why and what would make it possible; the other
// resource checks run measured, and the report says so.
func TestLimitsThatCannotBeEnforced(t *testing.T) {
	t.Setenv("OE_RT_LAUNCH_LIMITS", "v2")
	if _, err := launch.CheckLimits(); err == nil {
		t.Skip("this machine enforces limits by cgroup v2: nothing to refuse")
	}
	cfg := config(t, "serve")
	cfg.CgroupLimits = true
	cfg.Run = []string{"resources.*"}
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	r := byID(rep)["resources.limits"]
	assert.Equal(t, conformance.Skip, r.Status)
	assert.Contains(t, r.Message, "not run: this machine cannot enforce the limits: cgroup v2: ")
	assert.Contains(t, r.Message, "run as root")
	assert.Contains(t, r.Message, "docs/conformance.md#enforced-limits")
	require.NotNil(t, rep.Resources)
	assert.Equal(t, "measured", rep.Resources.Mode)
	assert.NotEmpty(t, rep.Resources.NotEnforced)
	assert.Equal(t, conformance.Pass, byID(rep)["resources.memory"].Status)
	assert.True(t, strings.HasPrefix(byID(rep)["resources.memory"].Message, "measured, not enforced"))
	assertNoChildren(t)
}

// Interrupted while its instances run under enforced limits, conform
// leaves no process and no cgroup behind.
func TestLimitsGoOnInterrupt(t *testing.T) {
	enforcing(t)
	cfg := config(t, "serve")
	cfg.CgroupLimits = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var during []string
	cfg.OnResult = func(r conformance.Result) {
		if r.ID == "call.sequence" {
			during = launchCgroups()
			cancel()
		}
	}
	rep, err := conformance.Run(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, conformance.Interrupted, rep.Verdict)
	assert.NotEmpty(t, during, "the instances had cgroups while they ran")
	assertNoChildren(t)
	noLimitCgroupsLeft(t)
}

// A runtime that stops answering under the function manager's load is not
// said to hold within the limit: the check does not run, and says why.
func TestHungLoadIsNotAPass(t *testing.T) {
	enforcing(t)
	cfg := config(t, "hang-after-10")
	cfg.CgroupLimits = true
	cfg.Run = []string{"resources.memory"}
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	r := byID(rep)["resources.memory"]
	assert.Equal(t, conformance.Skip, r.Status, r.Message)
	assert.Contains(t, r.Message, "not run: the function manager's load could not finish: instance #2 stopped answering (no answer within")
	assertNoChildren(t)
	noLimitCgroupsLeft(t)
}
