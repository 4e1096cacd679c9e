package conformance

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
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
// keeps the runtime (or conform) waiting for a CPU is not the runtime's
// failure: when the timeout passes, conform looks at what the machine did
// over the second half of it, and as long as the runtime's threads (or
// conform's) waited for a CPU a quarter of that window or more, it waits
// another half of the timeout, up to the function manager's own 30 s. A
// runtime that does not answer on an idle CPU is given up on at its
// timeout, as before. docs/conformance.md ("Waiting on a busy machine").
const starvedShare = 4 // waited ≥ 1/starvedShare of the window

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
		if now.waitedSince(from) < half/starvedShare || time.Since(start)+half > limit {
			pcancel(errGaveUp)
			return <-done, true
		}
		from = now
		timer.Reset(half)
	}
}

// waitSnap is what the threads of the runtime's process tree and of conform
// had waited for a CPU at one moment, per thread.
type waitSnap struct {
	runtime map[int]time.Duration
	self    map[int]time.Duration
}

func (inst *instance) waitSnap() waitSnap {
	s := waitSnap{runtime: map[int]time.Duration{}, self: selfWaits()}
	if inst.proc != nil {
		for tid, t := range readSched(inst.proc.Pid).threads {
			s.runtime[tid] = t[1]
		}
	}
	return s
}

// waitedSince is the longest wait of one thread of the runtime plus the
// longest of one of conform's since from.
func (s waitSnap) waitedSince(from waitSnap) time.Duration {
	longest := func(to, from map[int]time.Duration) time.Duration {
		var l time.Duration
		for tid, w := range to {
			l = max(l, w-from[tid]) // a thread new since from counts from its start
		}
		return l
	}
	return longest(s.runtime, from.runtime) + longest(s.self, from.self)
}

var selfTask = sync.OnceValue(func() string { return "/proc/" + strconv.Itoa(os.Getpid()) + "/task" })

// selfWaits reads conform's own threads' waits for a CPU.
func selfWaits() map[int]time.Duration {
	out := map[int]time.Duration{}
	ents, err := os.ReadDir(selfTask())
	if err != nil {
		return out
	}
	for _, e := range ents {
		b, err := os.ReadFile(selfTask() + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		tid, err1 := strconv.Atoi(e.Name())
		if len(f) < 2 || err1 != nil {
			continue
		}
		if w, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			out[tid] = time.Duration(w)
		}
	}
	return out
}
