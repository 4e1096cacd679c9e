package conformance

import (
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/oe-rt/oe-rt/client"
)

// The timing checks run last on the main instance, one after the other,
// so that nothing else disturbs their timing. Both rely on the sleep
// fixture sleeping the time asked: one that returns early fails them.

var callConcurrent = &Check{ID: "call.concurrent", Level: SHOULD, phase: phaseTiming, Needs: []string{"sleep"},
	Description: "4 parallel sleep calls of 500 ms finish within 1.5x one, not counting what the machine took (calibrated)",
	Hint: "Serve calls concurrently.\n" +
		"Python grpcio: ThreadPoolExecutor(max_workers=N) with N >= 4 (server.workers.max), maximum_concurrent_rpcs not 1.\n" +
		"Node @grpc/grpc-js: never block the event loop (setTimeout/async I/O, not Atomics.wait, execSync or busy loops).\n" +
		"grpc-go: concurrent by default; look for a mutex held across the handler.",
	run: checkConcurrent}

// parallelSleeps makes n sleep calls of each at once and says how long
// they took together and each; the runtime and the reference get the same.
func parallelSleeps(call callFunc, fn string, n int, each time.Duration) (total time.Duration, took []time.Duration, errs []*callErr) {
	payload := []byte(fmt.Sprintf(`{"ms":%d}`, each.Milliseconds()))
	var wg sync.WaitGroup
	errs = make([]*callErr, n)
	took = make([]time.Duration, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, errs[i] = call(&client.Message{FunctionName: fn, Payload: payload}, each+callTimeout)
			took[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	return time.Since(start), took, errs
}

func firstErr(errs []*callErr) *callErr {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func checkConcurrent(c *checkCtx) Outcome {
	const n, each = 4, 500 * time.Millisecond
	refResult := c.onReference(func(call callFunc) any {
		total, _, errs := parallelSleeps(call, "sleep", n, each)
		if e := firstErr(errs); e != nil {
			return e
		}
		return total
	})
	before := readSched(c.inst.proc.PID())
	total, took, errs := parallelSleeps(func(m *client.Message, timeout time.Duration) (*client.Message, *callErr) {
		return c.call(m, timeout)
	}, c.fn("sleep"), n, each)
	after := readSched(c.inst.proc.PID())
	m := machine{wait: waitBetweenCalls(before, after, total)}
	var refTotal time.Duration
	switch v, why := refResult(); v := v.(type) {
	case time.Duration:
		refTotal = v
		m.ref = max(0, v-each)
		m.refWords = fmt.Sprintf("the reference's %d sleeps of %s took %s at the same moment", n, dur(each), dur(v))
	case *callErr:
		m.noRef = "the reference's sleeps failed: " + v.describe()
	default:
		m.noRef = why
	}
	msg := &client.Message{FunctionName: c.fn("sleep"), Payload: []byte(fmt.Sprintf(`{"ms":%d}`, each.Milliseconds()))}
	for i, err := range errs {
		if err != nil {
			return c.failed(err, fmt.Sprintf("sleep call %d of %d parallel ones", i+1, n)).with(c.repro(msg))
		}
	}
	for _, d := range took {
		if d < each {
			return fail("sleep %d ms returned after %s: the sleep fixture must wait the time asked (this check relies on it)", each.Milliseconds(), d.Round(time.Millisecond)).with(c.repro(msg))
		}
	}
	limit := each * 3 / 2
	ok, tail := m.judge(total, limit)
	var o Outcome
	switch {
	case ok:
		o = pass("%d parallel %s sleeps took %s%s", n, dur(each), dur(total), tail)
	case m.starved(total, limit):
		o = fail("%d parallel %s sleeps took %s%s", n, dur(each), dur(total), tail)
	case total >= each*time.Duration(n)*9/10:
		o = fail("%d parallel %s sleeps took %s%s: they did not overlap, the runtime serves calls one after another", n, dur(each), dur(total), tail)
	default:
		o = fail("%d parallel %s sleeps took %s%s: they overlapped only in part", n, dur(each), dur(total), tail)
	}
	o.figures = m.figures(total, limit, refTotal)
	return o
}

var callDeadline = &Check{ID: "call.deadline", Level: SHOULD, phase: phaseTiming, Needs: []string{"sleep", "echo"},
	Description: "a 200 ms deadline on a 5 s sleep ends DEADLINE_EXCEEDED, and the next call is served within 500 ms, not counting what the machine took (calibrated)",
	Hint: "An abandoned call must not hold the runtime.\n" +
		"Python grpcio: the handler thread runs on after the deadline; use enough workers (server.workers.max) and check context.is_active().\n" +
		"Node @grpc/grpc-js: check call.cancelled (or its \"cancelled\" event) and stop; never block the event loop.\n" +
		"grpc-go: honour ctx.Done(); do not hold a mutex across the call.",
	run: checkDeadline}

func checkDeadline(c *checkCtx) Outcome {
	const deadline, sleep = 200 * time.Millisecond, 5 * time.Second
	refResult := c.onReference(func(call callFunc) any { return deadlineThenNext(call, deadline, sleep) })
	m := &client.Message{FunctionName: c.fn("sleep"), Payload: []byte(fmt.Sprintf(`{"ms":%d}`, sleep.Milliseconds()))}
	start := time.Now()
	_, err := c.callWithin(m, deadline)
	took := time.Since(start)
	repro := c.repro(m, "--timeout", deadline.String())
	switch {
	case err == nil:
		return fail("sleep %d ms returned OK after %s: the sleep fixture must wait the time asked (this check relies on it)", sleep.Milliseconds(), took.Round(time.Millisecond)).with(repro)
	case err.kind == kindNoAnswer, err.kind == kindAnswered && err.status.Code() == codes.DeadlineExceeded:
	case err.kind == kindAnswered:
		return fail("a %s sleep under a %s deadline ended with %s after %s, want DEADLINE_EXCEEDED", sleep, deadline, err.statusText(), took.Round(time.Millisecond)).with(repro)
	default:
		return c.failed(err, fmt.Sprintf("a %s sleep under a %s deadline", sleep, deadline)).with(repro)
	}
	next := &client.Message{FunctionName: c.fn("echo"), Payload: []byte("next")}
	before := readSched(c.inst.proc.PID())
	start = time.Now()
	_, err = c.call(next, callTimeout)
	wait := time.Since(start)
	after := readSched(c.inst.proc.PID())
	if err != nil {
		if err.kind == kindNoAnswer {
			return fail("the echo call after the deadline got no answer within %s: the abandoned sleep still holds the runtime; %s", callTimeout, hangWords(err))
		}
		return c.failed(err, "the echo call after the deadline").with(c.repro(next))
	}
	const line = 500 * time.Millisecond
	mc := machine{wait: waitBetweenCalls(before, after, wait)}
	var refNext time.Duration
	switch v, why := refResult(); v := v.(type) {
	case time.Duration:
		refNext, mc.ref = v, v
		mc.refWords = fmt.Sprintf("the reference answered its call after the same deadline in %s at the same moment", dur(v))
	case *callErr:
		mc.noRef = "the reference's calls failed: " + v.describe()
	default:
		mc.noRef = why
	}
	ok, tail := mc.judge(wait, line)
	o := pass("DEADLINE_EXCEEDED after %s; the next call took %s%s", took.Round(time.Millisecond), dur(wait), tail)
	switch {
	case !ok && mc.starved(wait, line):
		o = fail("the call after the deadline took %s%s", dur(wait), tail)
	case !ok:
		o = fail("the call after the deadline took %s%s: the abandoned call still holds the runtime", dur(wait), tail)
	}
	o.figures = mc.figures(wait, line, refNext)
	return o
}

// deadlineThenNext is call.deadline's measurement on the reference: the
// same sleep under the same deadline, then how long the next echo takes.
func deadlineThenNext(call callFunc, deadline, sleep time.Duration) any {
	_, err := call(&client.Message{FunctionName: "sleep", Payload: []byte(fmt.Sprintf(`{"ms":%d}`, sleep.Milliseconds()))}, deadline)
	if err != nil && !(err.kind == kindNoAnswer || err.kind == kindAnswered && err.status.Code() == codes.DeadlineExceeded) {
		return err
	}
	start := time.Now()
	if _, err := call(&client.Message{FunctionName: "echo", Payload: []byte("next")}, callTimeout); err != nil {
		return err
	}
	return time.Since(start)
}
