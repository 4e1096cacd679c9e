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
	Description: "4 parallel sleep calls of 500 ms finish within 1.5x one",
	Hint: "Serve calls concurrently.\n" +
		"Python grpcio: ThreadPoolExecutor(max_workers=N) with N >= 4 (server.workers.max), maximum_concurrent_rpcs not 1.\n" +
		"Node @grpc/grpc-js: never block the event loop (setTimeout/async I/O, not Atomics.wait, execSync or busy loops).\n" +
		"grpc-go: concurrent by default; look for a mutex held across the handler.",
	run: checkConcurrent}

func checkConcurrent(c *checkCtx) Outcome {
	const n, each = 4, 500 * time.Millisecond
	payload := []byte(fmt.Sprintf(`{"ms":%d}`, each.Milliseconds()))
	var wg sync.WaitGroup
	errs := make([]*callErr, n)
	took := make([]time.Duration, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, errs[i] = c.call(&client.Message{FunctionName: c.fn("sleep"), Payload: payload}, each+callTimeout)
			took[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	total := time.Since(start)
	m := &client.Message{FunctionName: c.fn("sleep"), Payload: payload}
	for i, err := range errs {
		if err != nil {
			return c.failed(err, fmt.Sprintf("sleep call %d of %d parallel ones", i+1, n)).with(c.repro(m))
		}
	}
	for _, d := range took {
		if d < each {
			return fail("sleep %d ms returned after %s: the sleep fixture must wait the time asked (this check relies on it)", each.Milliseconds(), d.Round(time.Millisecond)).with(c.repro(m))
		}
	}
	if limit := each * 3 / 2; total > limit {
		return fail("%d parallel %s sleeps took %s (limit %s): the runtime serves calls one after another", n, each, total.Round(time.Millisecond), limit)
	}
	return pass("%d parallel %s sleeps took %s", n, each, total.Round(time.Millisecond))
}

var callDeadline = &Check{ID: "call.deadline", Level: SHOULD, phase: phaseTiming, Needs: []string{"sleep", "echo"},
	Description: "a 200 ms deadline on a 5 s sleep ends DEADLINE_EXCEEDED, and the next call is served at once",
	Hint: "An abandoned call must not hold the runtime.\n" +
		"Python grpcio: the handler thread runs on after the deadline; use enough workers (server.workers.max) and check context.is_active().\n" +
		"Node @grpc/grpc-js: check call.cancelled (or its \"cancelled\" event) and stop; never block the event loop.\n" +
		"grpc-go: honour ctx.Done(); do not hold a mutex across the call.",
	run: checkDeadline}

func checkDeadline(c *checkCtx) Outcome {
	const deadline, sleep = 200 * time.Millisecond, 5 * time.Second
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
	start = time.Now()
	_, err = c.call(next, callTimeout)
	wait := time.Since(start)
	if err != nil {
		if err.kind == kindNoAnswer {
			return fail("the echo call after the deadline got no answer within %s: the abandoned sleep still holds the runtime; %s", callTimeout, c.r.hangWords(err))
		}
		return c.failed(err, "the echo call after the deadline").with(c.repro(next))
	}
	if wait > 500*time.Millisecond {
		return fail("the call after the deadline took %s: the abandoned call still holds the runtime", wait.Round(time.Millisecond))
	}
	return pass("DEADLINE_EXCEEDED after %s; the next call took %s", took.Round(time.Millisecond), wait.Round(time.Millisecond))
}
