package runtimeproc

// The test binary doubles as the runtimes these tests start
// (serve/servetest, the one fake runtime of bench's and runtimeproc's
// tests).

import (
	"os"
	"testing"

	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/serve/servetest"
)

func TestMain(m *testing.M) {
	launch.Init()
	servetest.Main(m, launch.EnableSubreaper)
}

// start starts the test binary as a runtime in mode, stopped when the test
// ends.
func start(t *testing.T, mode string, o Options) *Runtime {
	t.Helper()
	o.Command = append([]string{os.Args[0]}, o.Command...)
	o.Env = append(o.Env, servetest.Env(mode))
	r, err := Start(o)
	if err != nil {
		t.Fatalf("start %s: %v", mode, err)
	}
	t.Cleanup(func() { r.Proc.Kill() })
	return r
}

// assertNoChildren checks that no process the test started is left.
func assertNoChildren(t *testing.T) {
	t.Helper()
	for _, p := range launch.Tree(os.Getpid())[1:] {
		if p.State != 'Z' {
			t.Errorf("process %d outlived the test", p.Pid)
		}
	}
}
