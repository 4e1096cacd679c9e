package bench_test

// The test binary doubles as the runtimes bench starts in these tests
// (serve/servetest, the one fake runtime of bench's and runtimeproc's
// tests), serving the reference runtime's fixtures on the address bench
// gives it.

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/serve/servetest"
)

func TestMain(m *testing.M) {
	launch.Init()
	servetest.Main(m, launch.EnableSubreaper)
}

// launched returns a configuration that has bench start this test binary
// as a runtime in mode.
func launched(mode string) bench.Config {
	cfg := config("")
	cfg.Launch = &bench.Launch{Command: []string{os.Args[0]}, Env: []string{servetest.Env(mode)}}
	return cfg
}

// assertNoChildren checks that no process a test started is left.
func assertNoChildren(t *testing.T) {
	t.Helper()
	var alive []launch.Proc
	for _, p := range launch.Tree(os.Getpid())[1:] {
		if p.State != 'Z' {
			alive = append(alive, p)
		}
	}
	assert.Empty(t, alive, "processes outlived the run")
}

// killChildren ends every process a test left, after a test gave up on
// them; it logs what it ends.
func killChildren(t *testing.T) {
	t.Helper()
	for _, p := range launch.Tree(os.Getpid())[1:] {
		if p.State != 'Z' {
			t.Logf("killing process %d (state %c), left by the test", p.Pid, p.State)
			_ = syscall.Kill(p.Pid, syscall.SIGKILL)
		}
	}
}
