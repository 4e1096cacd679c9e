package conformance

import (
	"context"
	"errors"
	"time"
)

// managerCallTimeout is the function manager's own call timeout (Baetyl's
// function `timeout`, 30 s by default): the deadline every call of conform
// is sent with, unless a check asks for its own (call.deadline).
const managerCallTimeout = 30 * time.Second

// errGaveUp ends a call that got no answer within its timeout of the
// runtime's own time.
var errGaveUp = errors.New("no answer within the call's timeout")

// A call's timeout is counted in the runtime's own time. A machine that
// keeps the runtime waiting for a CPU is not the runtime's failure: when
// the timeout passes, conform looks at what the runtime's threads did over
// the second half of it, and as long as they were busy — ready to run or
// running, all threads together, for half of that window or more — and
// waited for a CPU a quarter of it or more, the runtime is working and the machine is holding
// it back: conform waits another half of the timeout and looks again, up
// to the function manager's own 30 s. A runtime whose threads are idle (a
// hung function, a deadlock, a sleep) is given up on at its timeout, as
// on a quiet machine, however busy the machine is. docs/conformance.md
// ("Waiting on a busy machine").
const (
	starvedShare = 4 // waited ≥ 1/starvedShare of the window
	busyShare    = 2 // ran or waited ≥ 1/busyShare of the window
)

// patience runs f with the call's deadline (the manager's, or timeout when
// longer) and cancels it when the runtime had its timeout of its own time
// without answering. It returns whether it gave up.
func (inst *instance) patience(ctx context.Context, timeout time.Duration, exact bool, f func(context.Context) error) (err error, gaveUp bool) {
	limit := max(timeout, managerCallTimeout)
	if exact {
		limit = timeout
	}
	dctx, dcancel := context.WithTimeout(ctx, limit)
	defer dcancel()
	pctx, pcancel := context.WithCancelCause(dctx)
	defer pcancel(nil)
	done := make(chan error, 1)
	go func() { done <- f(pctx) }()
	if exact {
		return <-done, false
	}
	start := time.Now()
	half := max(timeout/2, 50*time.Millisecond)
	var from waitSnap
	timer := time.NewTimer(timeout - half)
	defer timer.Stop()
	mid := true
	for {
		select {
		case err := <-done:
			return err, false
		case <-timer.C:
		}
		now := inst.waitSnap()
		if mid {
			from, mid = now, false
			timer.Reset(half)
			continue
		}
		if !now.starvedSince(from, half) || time.Since(start)+half > limit {
			pcancel(errGaveUp)
			return <-done, true
		}
		from = now
		timer.Reset(half)
	}
}

// waitSnap is what each thread of the runtime's process tree had run and
// waited for a CPU at one moment.
type waitSnap map[int][2]time.Duration

func (inst *instance) waitSnap() waitSnap {
	if inst.proc == nil {
		return nil
	}
	return readSched(inst.proc.PID()).threads
}

// starvedSince reports whether the runtime's threads together were busy
// (running or ready to run) half of the window since from and waited for
// a CPU a quarter of it (a thread new since from counts from its start).
// Together: a Go runtime moves its goroutines from thread to thread.
func (s waitSnap) starvedSince(from waitSnap, window time.Duration) bool {
	var run, wait time.Duration
	for tid, t := range s {
		f := from[tid]
		run += t[0] - f[0]
		wait += t[1] - f[1]
	}
	return wait >= window/starvedShare && run+wait >= window/busyShare
}

// letCallArrive waits for a call just sent to reach the runtime: 200 ms,
// and another 200 ms while the runtime was starved over the last, up to
// 600 ms in all. It reports whether the call ended (done closed) first.
func (inst *instance) letCallArrive(ctx context.Context, done <-chan struct{}) bool {
	const step, most = 200 * time.Millisecond, 600 * time.Millisecond
	from := inst.waitSnap()
	for waited := step; ; waited += step {
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		case <-time.After(step):
		}
		now := inst.waitSnap()
		if waited >= most || !now.starvedSince(from, step) {
			return false
		}
		from = now
	}
}
