package launch

import (
	"os"
	"os/exec"
	"testing"
)

// The cost of a launch, against a bare fork and exec of the same program
// (compare the ratios measured in one run: the machine is shared).

func BenchmarkExecBare(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// Each launch alone: the guard starts and stops with it.
func BenchmarkStartCleanup(b *testing.B) {
	for b.Loop() {
		p, err := Start(Spec{Path: "true", Env: os.Environ()})
		if err != nil {
			b.Fatal(err)
		}
		<-p.Done()
		p.Cleanup()
	}
}

// Launches while another is live: the guard is already there.
func BenchmarkStartCleanupGuarded(b *testing.B) {
	keep, err := Start(Spec{Path: "sleep", Args: []string{"300"}, Env: os.Environ()})
	if err != nil {
		b.Fatal(err)
	}
	defer keep.Kill()
	for b.Loop() {
		p, err := Start(Spec{Path: "true", Env: os.Environ()})
		if err != nil {
			b.Fatal(err)
		}
		<-p.Done()
		p.Cleanup()
	}
}

// One sample of a running program (the sampler does this every 20 ms).
func BenchmarkSample(b *testing.B) {
	p, err := Start(Spec{Path: "sh", Args: []string{"-c", "sleep 300 & sleep 300"}, Env: os.Environ()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Kill()
	for b.Loop() {
		p.Sample()
	}
}

// Survivors: one scan of /proc, environments included.
func BenchmarkSurvivors(b *testing.B) {
	p, err := Start(Spec{Path: "sh", Args: []string{"-c", "sleep 300 & sleep 300"}, Env: os.Environ()})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Kill()
	for b.Loop() {
		p.Survivors()
	}
}

// Tree: the whole-/proc scan the sampler made before.
func BenchmarkTree(b *testing.B) {
	for b.Loop() {
		Tree(os.Getpid())
	}
}
