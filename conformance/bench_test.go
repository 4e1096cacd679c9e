package conformance_test

import (
	"context"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

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

// BenchmarkConformReference is `oe-rt conform` with no runtime: the whole
// default catalog, the default long life, against oe-rt serve (the real
// binary, run as the command runs it), calibrated with oe-rt's reference.
// ns/op is conform's wall time; B/op what conform allocated over the run;
// peak-heap-MiB the most live heap seen (sampled every 2 ms), and
// maxrss-MiB the benchmark process's resident high-water mark (conform
// is that process: its payloads, buffers and goroutines). The runtimes
// it starts are processes of their own and count in neither. See
// docs/performance.md.
func BenchmarkConformReference(b *testing.B) {
	cfg := conformance.NewConfig(oeRT, "serve", "--log-level", "warn")
	cfg.Reference = reference
	b.ReportAllocs()
	peak := sampleHeap()
	for b.Loop() {
		rep, err := conformance.Run(context.Background(), cfg)
		if err != nil || !rep.Passed {
			b.Fatalf("conform failed: %v", err)
		}
	}
	b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
	}
}

// sampleHeap samples the live heap's size until the returned function is
// called, which returns the largest seen.
func sampleHeap() func() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var (
		mu   sync.Mutex
		peak uint64
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			mu.Lock()
			peak = max(peak, s[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
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
