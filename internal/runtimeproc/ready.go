package runtimeproc

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// DialOptions are the connection parameters WaitReady counts on: gRPC's
// reconnection back-off from 10 ms, growing by 1.2 to at most 50 ms, and
// at least 1 s for each attempt, so that a runtime is connected to within
// about 50 ms of listening (gRPC's default back-off starts at 1 s and
// grows to 2 minutes). Give them to every connection WaitReady watches.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.2, MaxDelay: 50 * time.Millisecond},
		MinConnectTimeout: time.Second,
	})}
}

// Wait says what WaitReady waits for.
type Wait struct {
	// Addr is the address the runtime was told to listen on.
	Addr string
	// Proc, when set, is the runtime's process: its exit or its stop
	// (SIGSTOP) ends the wait at once, and when the time runs out the
	// error says where it listens instead.
	Proc Process
	// Since is when the wait's time starts; zero means Proc.Started (its
	// exec), or the call to WaitReady without a Proc.
	Since time.Time
	// Timeout bounds the wait, from Since.
	Timeout time.Duration
	// ExitWords, when set, says how Proc ended, for the error; nil means
	// launch.Exit's own words ("exit status 3", "killed by SIGKILL").
	ExitWords func(launch.Exit) string
	// GiveUp, when set, is asked every 100 ms whether to stop waiting: a
	// non-nil error ends the wait with it.
	GiveUp func() error
}

// pollEvery is how often WaitReady looks at the process while the
// connection's state does not change.
const pollEvery = 20 * time.Millisecond

// retryEvery is how often WaitReady has gRPC try to connect again while
// the runtime refuses: gRPC's own back-off (DialOptions) would wait up to
// 50 ms, and a runtime would be seen ready up to 50 ms after it listens.
const retryEvery = 10 * time.Millisecond

// WaitReady waits until conn is READY — the TCP connection accepted and
// the HTTP/2 handshake (and TLS, if any) done, as the function manager
// waits for an instance: no call is made, so that no call can crash the
// runtime before anyone looked at it. It returns how long the runtime took
// from w.Since.
//
// It ends, with a *NotReadyError, as soon as w.Proc has exited or is
// stopped, or when w.Timeout has passed; with w.GiveUp's error; or with
// ctx's error. It never waits longer than w.Timeout past w.Since plus
// 20 ms (and what GiveUp takes).
func WaitReady(ctx context.Context, conn *grpc.ClientConn, w Wait) (time.Duration, error) {
	since := w.Since
	switch {
	case !since.IsZero():
	case w.Proc != nil:
		since = w.Proc.StartTime()
	default:
		since = time.Now()
	}
	deadline := since.Add(w.Timeout)
	conn.Connect()
	nextAsk := time.Now().Add(100 * time.Millisecond)
	var retried time.Time
	for {
		st := conn.GetState()
		if st == connectivity.Ready {
			return time.Since(since), nil
		}
		if w.Proc != nil {
			if x, ok := w.Proc.ExitStatus(); ok {
				words := x.String()
				if w.ExitWords != nil {
					words = w.ExitWords(x)
				}
				return 0, &NotReadyError{Addr: w.Addr, Exit: &x, ExitWords: words}
			}
			if w.Proc.Stopped() {
				return 0, &NotReadyError{Addr: w.Addr, Stopped: true}
			}
		}
		if time.Now().After(deadline) {
			e := &NotReadyError{Addr: w.Addr, Timeout: w.Timeout, State: st, Launched: w.Proc != nil}
			if w.Proc != nil {
				e.Hint, e.PortOpen = listenHint(w.Proc.PID(), w.Addr)
			}
			return 0, e
		}
		if w.GiveUp != nil && time.Now().After(nextAsk) {
			if err := w.GiveUp(); err != nil {
				return 0, err
			}
			nextAsk = time.Now().Add(100 * time.Millisecond)
		}
		wait := pollEvery
		switch st {
		case connectivity.Idle:
			conn.Connect()
		case connectivity.TransientFailure:
			// Connect again now rather than after gRPC's back-off, at most
			// every retryEvery: a refused connection fails at once, and
			// retrying at each state change would spin.
			if since := time.Since(retried); since >= retryEvery {
				conn.ResetConnectBackoff()
				retried = time.Now()
			} else {
				wait = retryEvery - since
			}
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		conn.WaitForStateChange(wctx, st)
		cancel()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}

// NotReadyError says why a runtime did not become ready: it exited, it
// was stopped, or the time ran out.
type NotReadyError struct {
	// Addr is the address it was told to listen on.
	Addr string
	// Exit, when set, is how the process ended before it was ready, and
	// ExitWords says it in words.
	Exit      *launch.Exit
	ExitWords string
	// Stopped is true when the process was found stopped (SIGSTOP).
	Stopped bool
	// Timeout is set when the time ran out; State is then the
	// connection's state.
	Timeout time.Duration
	State   connectivity.State
	// Launched is true when the wait was for a process (the time counts
	// from its exec).
	Launched bool
	// Hint says, when the time ran out for a process, where its processes
	// listen: "the runtime listens on no TCP port", "the runtime listens on
	// 0.0.0.0:8080 instead: …", or that Addr is open but the handshake
	// never completed (PortOpen).
	Hint     string
	PortOpen bool
}

func (e *NotReadyError) Error() string {
	switch {
	case e.Exit != nil:
		return fmt.Sprintf("the runtime exited (%s) before it accepted a connection on %s", e.ExitWords, e.Addr)
	case e.Stopped:
		return fmt.Sprintf("the runtime was stopped (SIGSTOP) before it accepted a connection on %s", e.Addr)
	case !e.Launched:
		return fmt.Sprintf("no gRPC connection on %s within %s", e.Addr, e.Timeout)
	case e.Hint == "":
		return fmt.Sprintf("no gRPC connection on %s within %s of exec", e.Addr, e.Timeout)
	}
	return fmt.Sprintf("no gRPC connection on %s within %s of exec (%s)", e.Addr, e.Timeout, e.Hint)
}

// listenHint says where the process pid and its descendants listen, when
// not on addr, and whether they listen on addr.
func listenHint(pid int, addr string) (hint string, portOpen bool) {
	addrs, err := launch.TreeListeners(pid)
	if err != nil || len(addrs) == 0 {
		return "the runtime listens on no TCP port", false
	}
	for _, a := range addrs {
		if a == addr {
			return "the port is open, but the HTTP/2 handshake never completed: is it a gRPC server?", true
		}
	}
	return fmt.Sprintf("the runtime listens on %s instead: read the address from the environment", strings.Join(addrs, ", ")), false
}
