package conformance_test

import (
	"context"
	"testing"

	"github.com/oe-rt/oe-rt/conformance"
)

// BenchmarkSuite runs the whole default suite against the reference runtime
// (the test binary re-executed as `serve`). ns/op is the suite's wall time.
func BenchmarkSuite(b *testing.B) {
	cfg := config(b, "serve")
	for b.Loop() {
		rep, err := conformance.Run(context.Background(), cfg)
		if err != nil || !rep.Passed {
			b.Fatalf("suite failed: %v", err)
		}
	}
}

func TestGoTestHelper(t *testing.T) {
	cfg := config(t, "serve")
	cfg.Run = []string{"echo.*", "call.fields"}
	rep := conformance.Test(t, cfg)
	if want := len(conformance.Select(cfg.Run)); len(rep.Checks) != want {
		t.Fatalf("want %d checks, got %d", want, len(rep.Checks))
	}
}
