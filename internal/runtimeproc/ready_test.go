package runtimeproc

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// dial opens a connection to addr as conform and bench do.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, append(DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// notReady waits for a runtime in mode and returns why it was not ready.
func notReady(t *testing.T, mode string, w Wait) *NotReadyError {
	t.Helper()
	// A short grace: "silent" and "tcp" take SIGTERM and never look at
	// it, and what these tests judge is the wait, not the stop (10 s of
	// DefaultGrace each; TestStopUnwilling tests the stop).
	r := start(t, mode, Options{Grace: 300 * time.Millisecond})
	w.Proc, w.Addr = r.Proc, r.Addr
	_, err := WaitReady(context.Background(), dial(t, r.Addr), w)
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("%s: got %v, want a *NotReadyError", mode, err)
	}
	if err := r.Stop(); mode != "exit" && err != nil {
		t.Errorf("stop: %v", err)
	}
	assertNoChildren(t)
	return nr
}

func TestWaitReady(t *testing.T) {
	for _, mode := range []string{"serve", "slow"} {
		r := start(t, mode, Options{})
		in, err := WaitReady(context.Background(), dial(t, r.Addr), Wait{Addr: r.Addr, Proc: r.Proc, Timeout: time.Minute})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		// Counted from exec: the slow one listens 300 ms after it.
		if in <= 0 || in > time.Since(r.Proc.StartTime()) || mode == "slow" && in < 300*time.Millisecond {
			t.Errorf("%s: ready in %s", mode, in)
		}
		if err := r.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	assertNoChildren(t)
}

// A runtime that exits before it listens ends the wait, long before the
// time runs out, with how it ended.
func TestWaitReadyExited(t *testing.T) {
	nr := notReady(t, "exit", Wait{Timeout: 20 * time.Second})
	if nr.Exit == nil || nr.Exit.Code != 3 || nr.Timeout != 0 {
		t.Fatalf("%+v: want exit status 3", nr)
	}
	if want := "the runtime exited (exit status 3) before it accepted a connection on " + nr.Addr; nr.Error() != want {
		t.Errorf("%q, want %q", nr, want)
	}
	// The caller's words for the exit.
	nr = notReady(t, "exit", Wait{Timeout: 20 * time.Second, ExitWords: func(x launch.Exit) string { return "it ended: " + x.String() }})
	if !strings.Contains(nr.Error(), "(it ended: exit status 3)") {
		t.Errorf("%q does not use ExitWords", nr)
	}
}

// A runtime that stops itself (SIGSTOP) ends the wait: it would never
// answer.
func TestWaitReadyStopped(t *testing.T) {
	nr := notReady(t, "stop", Wait{Timeout: 20 * time.Second})
	if !nr.Stopped || nr.Exit != nil || nr.Timeout != 0 {
		t.Fatalf("%+v: want stopped", nr)
	}
	if want := "the runtime was stopped (SIGSTOP) before it accepted a connection on " + nr.Addr; nr.Error() != want {
		t.Errorf("%q, want %q", nr, want)
	}
}

// When the time runs out, the error says where the runtime listens.
func TestWaitReadyTimeoutHints(t *testing.T) {
	for _, tc := range []struct {
		mode, hint string
		portOpen   bool
	}{
		{"elsewhere", "the runtime listens on 127.0.0.1:", false},
		{"silent", "the runtime listens on no TCP port", false},
		{"tcp", "the port is open, but the HTTP/2 handshake never completed", true},
	} {
		nr := notReady(t, tc.mode, Wait{Timeout: time.Second})
		if nr.Timeout != time.Second || !nr.Launched || nr.Exit != nil || nr.Stopped {
			t.Errorf("%s: %+v: want the time to run out", tc.mode, nr)
		}
		if !strings.HasPrefix(nr.Error(), "no gRPC connection on "+nr.Addr+" within 1s of exec ("+tc.hint) {
			t.Errorf("%s: %q, want the hint %q", tc.mode, nr, tc.hint)
		}
		if nr.PortOpen != tc.portOpen {
			t.Errorf("%s: PortOpen %v", tc.mode, nr.PortOpen)
		}
		if tc.mode == "elsewhere" && (!strings.HasSuffix(nr.Hint, "instead: read the address from the environment") || strings.Contains(nr.Hint, nr.Addr)) {
			t.Errorf("elsewhere: %q", nr.Hint)
		}
	}
}

// GiveUp ends the wait with its error; ctx ends it with ctx's.
func TestWaitReadyGiveUpAndCancel(t *testing.T) {
	r := start(t, "silent", Options{Grace: 300 * time.Millisecond}) // as notReady's
	conn := dial(t, r.Addr)
	asked := 0
	stop := errors.New("enough")
	_, err := WaitReady(context.Background(), conn, Wait{Addr: r.Addr, Proc: r.Proc, Timeout: 20 * time.Second,
		GiveUp: func() error {
			if asked++; asked == 3 {
				return stop
			}
			return nil
		}})
	if err != stop || asked != 3 {
		t.Errorf("got %v after %d questions, want GiveUp's error after 3", err, asked)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err = WaitReady(ctx, conn, Wait{Addr: r.Addr, Proc: r.Proc, Timeout: 20 * time.Second}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	assertNoChildren(t)
}

// Without a process (a runtime at an address), only the time ends the
// wait, counted from the call or from Since.
func TestWaitReadyAddressOnly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	begin := time.Now()
	_, err = WaitReady(context.Background(), dial(t, addr), Wait{Addr: addr, Timeout: 300 * time.Millisecond})
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Launched || nr.Hint != "" {
		t.Fatalf("got %v, want a *NotReadyError without a process", err)
	}
	if want := "no gRPC connection on " + addr + " within 300ms"; err.Error() != want {
		t.Errorf("%q, want %q", err, want)
	}
	if time.Since(begin) < 300*time.Millisecond {
		t.Errorf("gave up after %s", time.Since(begin))
	}
	// Since in the past: the time has already run out.
	begin = time.Now()
	_, err = WaitReady(context.Background(), dial(t, addr), Wait{Addr: addr, Since: begin.Add(-time.Hour), Timeout: time.Minute})
	if !errors.As(err, &nr) || time.Since(begin) > 30*time.Second {
		t.Errorf("got %v after %s, want the time run out at once", err, time.Since(begin))
	}
}

// While the runtime refuses, WaitReady has gRPC connect again every 10 ms
// rather than after its back-off, and never spins: against a port that
// accepts and closes at once (each attempt fails at once), a 1 s wait
// makes about a hundred attempts, not thousands.
func TestWaitReadyRetriesWithoutSpinning(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan int)
	go func() {
		n := 0
		for {
			c, err := l.Accept()
			if err != nil {
				accepted <- n
				return
			}
			n++
			c.Close()
		}
	}()
	addr := l.Addr().String()
	conn := dial(t, addr)
	_, err = WaitReady(context.Background(), conn, Wait{Addr: addr, Timeout: time.Second})
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("got %v, want the time to run out", err)
	}
	conn.Close()
	l.Close()
	n := <-accepted
	if n < 2 || n > 300 {
		t.Errorf("%d connection attempts in 1s, want about 100", n)
	}
	t.Logf("%d connection attempts in 1s", n)
}
