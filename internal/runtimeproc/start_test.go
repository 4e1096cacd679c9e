package runtimeproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/serve/servetest"
)

// ready waits for r and fails the test when it is not ready.
func ready(t *testing.T, r *Runtime) {
	t.Helper()
	if _, err := WaitReady(context.Background(), dial(t, r.Addr), Wait{Addr: r.Addr, Proc: r.Proc, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}
}

// The runtime gets its address and name in the profile's variables, in
// Dir, and none of the master's variables this process has.
func TestStartEnvironment(t *testing.T) {
	t.Setenv("OPENEDGE_MASTER_API", "tcp://127.0.0.1:1")
	t.Setenv("BAETYL_MASTER_API_ADDRESS", "unix://x")
	t.Setenv("OPENEDGE_SERVICE_ADDRESS", "127.0.0.1:1") // the harness's, not the runtime's
	dir := t.TempDir()
	for _, p := range []convention.Profile{"", convention.ProfileOpenEdge, convention.ProfileBaetyl} {
		r := start(t, "serve", Options{Profile: p, Name: "oe-rt-test", Dir: dir})
		ready(t, r)
		got := strings.TrimSpace(r.Proc.Stdout())
		if want := "addr=" + r.Addr + " name=oe-rt-test cwd=" + dir + " master="; got != want {
			t.Errorf("profile %q: the runtime saw %q, want %q", p, got, want)
		}
		if err := r.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	assertNoChildren(t)
}

// A relative program is found under Dir, else in the current directory;
// found in neither, the error names both and matches launch.ErrStart.
func TestStartResolvesUnderDir(t *testing.T) {
	top := t.TempDir()
	if err := os.MkdirAll(filepath.Join(top, "proj", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(os.Args[0], filepath.Join(top, "proj", "bin", "rt")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(top)
	for _, path := range []string{"./bin/rt", "proj/bin/rt"} {
		r, err := Start(Options{Command: []string{path}, Dir: "proj", Env: []string{servetest.Env("serve")}})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ready(t, r)
		if err := r.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	_, err := Start(Options{Command: []string{"./nope/rt"}, Dir: "proj"})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !errors.Is(err, launch.ErrStart) {
		t.Fatalf("got %v, want a *NotFoundError that matches launch.ErrStart", err)
	}
	for _, p := range []string{filepath.Join(top, "proj", "nope", "rt"), filepath.Join(top, "nope", "rt")} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%q does not name %s", err, p)
		}
	}
	// A program that is there but cannot run is launch's to name.
	if err := os.WriteFile(filepath.Join(top, "proj", "bin", "text"), []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Start(Options{Command: []string{"./bin/text"}, Dir: "proj"})
	var se *launch.StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), filepath.Join(top, "proj", "bin", "text")) {
		t.Errorf("got %v, want a *launch.StartError about proj/bin/text", err)
	}
	if _, err := Start(Options{}); !errors.Is(err, launch.ErrStart) {
		t.Errorf("no command: %v", err)
	}
	assertNoChildren(t)
}

// Stop ends a runtime that ignores SIGTERM after the grace period, and a
// stopped one (SIGSTOP, which SIGTERM cannot end) at once.
func TestStopUnwilling(t *testing.T) {
	r := start(t, "ignore-term", Options{Grace: 300 * time.Millisecond})
	ready(t, r)
	if err := r.Stop(); err != nil {
		t.Errorf("stop: %v (it was asked to stop: no error)", err)
	}
	if x, ok := r.Proc.ExitStatus(); !ok || x.Signal.String() != "killed" {
		t.Errorf("ended %v, want killed by SIGKILL", x)
	}

	r = start(t, "stop", Options{Grace: 10 * time.Minute})
	for !r.Proc.Stopped() && !r.Proc.Exited() {
		time.Sleep(10 * time.Millisecond)
	}
	begin := time.Now()
	if err := r.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if !r.Proc.Exited() || time.Since(begin) > time.Minute {
		t.Errorf("a stopped runtime took %s to stop, grace 10m", time.Since(begin))
	}
	assertNoChildren(t)
}

// A runtime that ended by itself: Stop says how, with its stderr.
func TestStopAfterExit(t *testing.T) {
	r := start(t, "exit", Options{})
	<-r.Proc.Done()
	err := r.Stop()
	if err == nil || !strings.Contains(err.Error(), "the runtime ended (exit status 3); its stderr ends with:\nImportError: no module named grpc") {
		t.Errorf("got %v", err)
	}
	if r.ExitErr() == nil || r.Stop() == nil {
		t.Error("ExitErr and a second Stop say it again")
	}
	// A clean exit is no error.
	r = start(t, "serve", Options{})
	ready(t, r)
	if r.ExitErr() != nil {
		t.Error("a running runtime has no exit error")
	}
	if err := r.Stop(); err != nil || r.ExitErr() != nil {
		t.Errorf("stopped on SIGTERM, exit 0: %v, %v", err, r.ExitErr())
	}
	assertNoChildren(t)
}
