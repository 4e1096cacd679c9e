package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// callTimeout bounds every ordinary call of a check.
const callTimeout = 5 * time.Second

var catalog = []*Check{
	{ID: "start.listen", Level: MUST, phase: phaseStart,
		Description: "accepts Call on the address given in the environment within the start timeout",
		run:         checkStartListen},
	{ID: "start.time", Level: SHOULD, phase: phaseStart,
		Description: "first successful Call within 1 s of exec",
		run:         checkStartTime},
	{ID: "start.scope", Level: SHOULD, phase: phaseStart,
		Description: "listens on the given address only: no other listening TCP socket, no wildcard bind",
		run:         checkStartScope},
	{ID: "run.alive", Level: MUST, phase: phaseEnd,
		Description: "does not exit before it is asked to",
		run:         checkRunAlive},
	{ID: "call.unknown-function", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
		Description: "an unconfigured FunctionName gets a non-OK status and the runtime keeps serving",
		run:         checkUnknownFunction},
	{ID: "call.malformed", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
		Description: "a request that is not a valid FunctionMessage gets a non-OK status; the runtime keeps serving",
		run:         checkMalformed},
	{ID: "call.oversize", Level: SHOULD, phase: phaseLarge, Needs: []string{"echo"},
		Description: "a request over the 4 MiB default gets RESOURCE_EXHAUSTED; the runtime keeps serving",
		run:         checkOversize},
	{ID: "call.unimplemented", Level: SHOULD, phase: phaseCalls,
		Description: "another method of the service gets UNIMPLEMENTED",
		run:         checkUnimplemented},
	{ID: "call.fields", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
		Description: "ID, QOS, Topic, FunctionName, FunctionInvokeID come back unchanged",
		run:         checkFields},
	{ID: "echo.bytes", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
		Description: "non-JSON bytes (invalid UTF-8, NUL, 1 B to 1 MiB) come back byte for byte",
		run:         checkEchoBytes},
	{ID: "echo.json", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
		Description: "a JSON payload comes back as an equal JSON value",
		run:         checkEchoJSON},
	{ID: "echo.empty", Level: SHOULD, phase: phaseCalls, Needs: []string{"echo"},
		Description: "an empty payload comes back empty, or as {} (what Baetyl's own runtimes return)",
		run:         checkEchoEmpty},
	{ID: "echo.large", Level: SHOULD, phase: phaseLarge, Needs: []string{"echo"},
		Description: "a payload just under 4 MiB comes back whole",
		run:         checkEchoLarge},
	{ID: "context.metadata", Level: MUST, phase: phaseCalls, Needs: []string{"context"},
		Description: "the function sees the call's QOS, Topic, FunctionName, FunctionInvokeID",
		run:         checkContext},
	{ID: "none.empty", Level: MUST, phase: phaseCalls, Needs: []string{"none"},
		Description: "a function that returns nothing gives OK and an empty payload",
		run:         checkNone},
	{ID: "fail.status", Level: MUST, phase: phaseCalls, Needs: []string{"fail", "echo"},
		Description: "a failing function gives a non-OK status carrying its message; the next call succeeds",
		run:         checkFail},
	{ID: "call.sequence", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
		Description: "200 calls in a row all succeed (p50/p99 reported)",
		run:         checkSequence},
	{ID: "call.concurrent", Level: SHOULD, phase: phaseTiming, Needs: []string{"sleep"},
		Description: "4 parallel sleep calls of 500 ms finish within 1.5x one",
		run:         checkConcurrent},
	{ID: "call.deadline", Level: SHOULD, phase: phaseTiming, Needs: []string{"sleep", "echo"},
		Description: "a 200 ms deadline on a 5 s sleep ends DEADLINE_EXCEEDED within 1 s, and the next call is served at once",
		run:         checkDeadline},
	{ID: "shutdown.sigterm", Level: MUST, phase: phaseShutdown,
		Description: "after SIGTERM the runtime exits by itself within the grace period",
		run:         checkShutdownSigterm},
	{ID: "shutdown.exit-code", Level: SHOULD, phase: phaseShutdown,
		Description: "exit status 0 after SIGTERM",
		run:         checkShutdownExitCode},
	{ID: "shutdown.drain", Level: MUST, phase: phaseShutdown, Needs: []string{"sleep"},
		Description: "a call in flight when SIGTERM arrives completes successfully",
		run:         checkShutdownDrain},
	{ID: "shutdown.no-orphans", Level: MUST, phase: phaseShutdown,
		Description: "no descendant process outlives the runtime",
		run:         checkShutdownOrphans},
	{ID: "resources.memory", Level: SHOULD, phase: phaseEnd,
		Description: "peak RSS of the runtime's process tree during the suite is at most 50 MiB",
		run:         checkMemory},
	{ID: "resources.threads", Level: SHOULD, phase: phaseEnd,
		Description: "peak thread count of the runtime's process tree is at most 20",
		run:         checkThreads},
	limitsCheck,
}

// limitsCheck runs only with --limit-memory/--limit-threads: it reports
// whether the limits could be enforced; the other checks then run under them.
var limitsCheck = &Check{ID: "resources.limits", Level: SHOULD, phase: phaseEnd,
	Description: "the suite passes with the memory and thread limits enforced by a cgroup (only with --limit-memory/--limit-threads)",
	run:         checkLimits}

// --- start ---

func checkStartListen(t *T) Outcome {
	if err := t.inst.readyErr; err != nil {
		return fail("%v", err)
	}
	return pass("answered on %s after %s", t.inst.addr, t.inst.ready.Round(time.Millisecond))
}

func checkStartTime(t *T) Outcome {
	if t.inst.ready > time.Second {
		return fail("first call answered %s after exec; the function manager starts instances on demand, so aim for under 1 s", t.inst.ready.Round(time.Millisecond))
	}
	return pass("first call answered %s after exec", t.inst.ready.Round(time.Millisecond))
}

func checkStartScope(t *T) Outcome {
	pids := []int{t.inst.proc.Pid}
	for _, p := range launch.Tree(t.inst.proc.Pid) {
		pids = append(pids, p.Pid)
	}
	addrs, err := launch.Listeners(pids)
	if err != nil {
		return skip("cannot read listening sockets: %v", err)
	}
	var wrong []string
	for _, a := range addrs {
		if a != t.inst.addr {
			wrong = append(wrong, a)
		}
	}
	if len(wrong) > 0 {
		host, _, _ := net.SplitHostPort(wrong[0])
		hint := ""
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			hint = " (a wildcard bind: listen on the address given, not on every interface)"
		}
		return fail("listens on %s besides the given %s%s", strings.Join(wrong, ", "), t.inst.addr, hint)
	}
	return pass("listens on %s only", t.inst.addr)
}

// aliveWindow is the least time run.alive watches the runtime for after
// it became ready, when the checks selected end sooner.
const aliveWindow = time.Second

func checkRunAlive(t *T) Outcome {
	if wait := aliveWindow - time.Since(t.inst.proc.Started.Add(t.inst.ready)); wait > 0 {
		select {
		case <-time.After(wait):
		case <-t.inst.proc.Done():
		case <-t.ctx.Done():
		}
	}
	if e, ok := t.inst.proc.ExitStatus(); ok {
		return fail("the runtime exited on its own during the suite (%s) after %s", e, e.At.Sub(t.inst.proc.Started).Round(time.Millisecond))
	}
	return pass("still running after %s", time.Since(t.inst.proc.Started).Round(time.Millisecond))
}

// --- calls ---

// stillServing checks that the runtime answers an echo call.
func (t *T) stillServing(after string) *Outcome {
	m := &client.Message{FunctionName: t.fn("echo"), Payload: []byte("still serving?")}
	if _, err := t.call(m, callTimeout); err != nil {
		o := fail("after %s the runtime stopped serving: the next echo call failed: %s", after, statusText(err)).with(t.repro(m))
		return &o
	}
	return nil
}

func checkUnknownFunction(t *T) Outcome {
	m := &client.Message{FunctionName: "oe-rt-no-such-function-" + randomHex(4), Payload: []byte("x")}
	_, err := t.call(m, callTimeout)
	if err == nil {
		return fail("calling unconfigured function %q returned OK; it must fail (NOT_FOUND)", m.FunctionName).with(t.repro(m))
	}
	if o := t.stillServing("an unknown function"); o != nil {
		return *o
	}
	return pass("%s", statusText(err))
}

// malformed is a FunctionMessage cut short: field 4 (Payload) announces
// 127 bytes and two follow. Every protobuf parser rejects it.
var malformed = []byte{0x22, 0x7f, 'x', 'y'}

func checkMalformed(t *T) Outcome {
	ctx, cancel := context.WithTimeout(t.ctx, callTimeout)
	defer cancel()
	_, err := t.inst.cli.CallRaw(ctx, "", malformed)
	if err == nil {
		return fail("a truncated FunctionMessage (bytes 22 7f 78 79) got OK; it must be rejected")
	}
	if o := t.stillServing("a malformed request"); o != nil {
		return *o
	}
	return pass("%s", statusText(err))
}

func checkOversize(t *T) Outcome {
	m := &client.Message{FunctionName: t.fn("echo"), Payload: randomBytes(convention.DefaultMaxMessageSize + 64<<10)}
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	// Accept a large answer, so that RESOURCE_EXHAUSTED can only come from
	// the runtime, not from this client's own limit.
	_, err := t.inst.cli.Call(ctx, m, grpc.MaxCallRecvMsgSize(64<<20))
	if status.Code(err) != codes.ResourceExhausted {
		if err == nil {
			return fail("a %d-byte request got OK; over the 4 MiB default it must get RESOURCE_EXHAUSTED (server.message.length.max)", len(m.Payload))
		}
		return fail("a %d-byte request got %s, want RESOURCE_EXHAUSTED", len(m.Payload), statusText(err))
	}
	if o := t.stillServing("an oversized request"); o != nil {
		return *o
	}
	return pass("%s", statusText(err))
}

func checkUnimplemented(t *T) Outcome {
	method := "/" + t.inst.cli.Schema().Service() + "/OeRtNoSuchMethod"
	ctx, cancel := context.WithTimeout(t.ctx, callTimeout)
	defer cancel()
	_, err := t.inst.cli.CallRaw(ctx, method, nil)
	if status.Code(err) != codes.Unimplemented {
		return fail("%s got %s, want UNIMPLEMENTED", method, statusText(err))
	}
	return pass("%s: UNIMPLEMENTED", method)
}

func checkFields(t *T) Outcome {
	m := &client.Message{
		ID: 0x1234_5678_9abc, QOS: 1, Topic: "oe-rt/conform/fields",
		Payload: []byte(`{"fields":true}`), FunctionName: t.fn("echo"), FunctionInvokeID: "oe-rt-" + randomHex(8),
	}
	if t.inst.cli.Schema().HasTimestamp() {
		m.Timestamp = -1_700_000_000_123
	}
	res, err := t.call(m, callTimeout)
	if err != nil {
		return fail("echo failed: %s", statusText(err)).with(t.repro(m))
	}
	var diffs []string
	cmp := func(name string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", name, got, want))
		}
	}
	cmp("ID", res.ID, m.ID)
	cmp("QOS", res.QOS, m.QOS)
	cmp("Topic", res.Topic, m.Topic)
	cmp("FunctionName", res.FunctionName, m.FunctionName)
	cmp("FunctionInvokeID", res.FunctionInvokeID, m.FunctionInvokeID)
	if m.Timestamp != 0 {
		cmp("Timestamp", res.Timestamp, m.Timestamp)
	}
	if len(diffs) > 0 {
		return fail("the response must be the request with only Payload replaced: %s", strings.Join(diffs, "; ")).with(t.repro(m))
	}
	return pass("all fields came back unchanged")
}

func checkEchoBytes(t *T) Outcome {
	cases := []struct {
		name    string
		payload []byte
	}{
		{"1 byte", []byte{0xff}},
		{"invalid UTF-8", []byte{0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1}},
		{"NUL bytes", []byte{0xff, 0x00, 'a', 0x00, 0x00, 'b'}},
		{"64 KiB", append([]byte{0xff}, randomBytes(64<<10-1)...)},
		{"1 MiB", append([]byte{0xff}, randomBytes(1<<20-1)...)},
	}
	for _, c := range cases {
		m := &client.Message{FunctionName: t.fn("echo"), Payload: c.payload}
		res, err := t.call(m, 10*time.Second)
		if err != nil {
			return fail("echo of %s failed: %s", c.name, statusText(err)).with(t.repro(m))
		}
		if !bytes.Equal(res.Payload, c.payload) {
			return fail("echo of %s (%d bytes) came back different: %s", c.name, len(c.payload), byteDiff(res.Payload, c.payload)).with(t.repro(m))
		}
	}
	return pass("%d payloads from 1 B to 1 MiB came back byte for byte", len(cases))
}

func checkEchoJSON(t *T) Outcome {
	in := []byte(`{"name":"oe-rt","n":42,"pi":3.25,"ok":true,"none":null,"list":[1,"two",{"three":3}],"unicode":"héllo ✓"}`)
	m := &client.Message{FunctionName: t.fn("echo"), Payload: in}
	res, err := t.call(m, callTimeout)
	if err != nil {
		return fail("echo failed: %s", statusText(err)).with(t.repro(m))
	}
	var want, got any
	_ = json.Unmarshal(in, &want)
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		return fail("the response is not JSON: %v: %q", err, clip(res.Payload)).with(t.repro(m))
	}
	if !reflect.DeepEqual(got, want) {
		return fail("the JSON came back as a different value: %s", clip(res.Payload)).with(t.repro(m))
	}
	return pass("an equal JSON value came back")
}

func checkEchoEmpty(t *T) Outcome {
	m := &client.Message{FunctionName: t.fn("echo")}
	res, err := t.call(m, callTimeout)
	if err != nil {
		return fail("echo of an empty payload failed: %s", statusText(err)).with(t.repro(m))
	}
	switch {
	case len(res.Payload) == 0:
		return pass("empty in, empty out")
	case jsonEqual(res.Payload, []byte("{}")):
		// Baetyl's Python and Node runtimes hand the function {} for an
		// empty payload, and the echo returns it.
		return pass("empty in, {} out (as Baetyl's own runtimes answer)")
	}
	return fail("echo of an empty payload returned %d bytes: %q; want an empty payload or {}", len(res.Payload), clip(res.Payload)).with(t.repro(m))
}

func checkEchoLarge(t *T) Outcome {
	p := append([]byte{0xff}, randomBytes(convention.DefaultMaxMessageSize-64<<10-1)...)
	m := &client.Message{FunctionName: t.fn("echo"), Payload: p}
	res, err := t.call(m, 20*time.Second)
	if err != nil {
		return fail("echo of %d bytes failed: %s", len(p), statusText(err)).with(t.repro(m))
	}
	if !bytes.Equal(res.Payload, p) {
		return fail("echo of %d bytes came back different: %s", len(p), byteDiff(res.Payload, p)).with(t.repro(m))
	}
	return pass("%d bytes came back whole", len(p))
}

func checkContext(t *T) Outcome {
	m := &client.Message{ID: 7, QOS: 1, Topic: "oe-rt/conform/context", Payload: []byte(`{"context":true}`),
		FunctionName: t.fn("context"), FunctionInvokeID: "oe-rt-" + randomHex(8)}
	res, err := t.call(m, callTimeout)
	if err != nil {
		return fail("context failed: %s", statusText(err)).with(t.repro(m))
	}
	var got map[string]any
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		return fail("the context fixture must return a JSON object; got %q", clip(res.Payload)).with(t.repro(m))
	}
	want := map[string]any{"messageQOS": float64(m.QOS), "messageTopic": m.Topic, "functionName": m.FunctionName, "functionInvokeID": m.FunctionInvokeID}
	var diffs []string
	for _, k := range []string{"messageQOS", "messageTopic", "functionName", "functionInvokeID"} {
		if !reflect.DeepEqual(got[k], want[k]) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", k, got[k], want[k]))
		}
	}
	if len(diffs) > 0 {
		return fail("the function saw the wrong context: %s", strings.Join(diffs, "; ")).with(t.repro(m))
	}
	return pass("QOS, Topic, FunctionName and FunctionInvokeID reached the function")
}

func checkNone(t *T) Outcome {
	m := &client.Message{FunctionName: t.fn("none"), Payload: []byte(`{"none":true}`)}
	res, err := t.call(m, callTimeout)
	if err != nil {
		return fail("none failed: %s", statusText(err)).with(t.repro(m))
	}
	if len(res.Payload) != 0 {
		return fail("a function that returns nothing must give an empty payload; got %q", clip(res.Payload)).with(t.repro(m))
	}
	return pass("OK with an empty payload")
}

func checkFail(t *T) Outcome {
	m := &client.Message{FunctionName: t.fn("fail"), Payload: []byte(`{"fail":true}`)}
	_, err := t.call(m, callTimeout)
	if err == nil {
		return fail("the fail fixture returned OK; a failing function must give a non-OK status").with(t.repro(m))
	}
	st := status.Convert(err)
	if !strings.Contains(st.Message(), "conformance failure") {
		return fail("the status (%s) does not carry the function's message %q", statusText(err), "conformance failure").with(t.repro(m))
	}
	if o := t.stillServing("a failing function"); o != nil {
		return *o
	}
	return pass("%s", statusText(err))
}

func checkSequence(t *T) Outcome {
	const n = 200
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		m := &client.Message{ID: uint64(i + 1), FunctionName: t.fn("echo"), Payload: []byte(fmt.Sprintf(`{"seq":%d}`, i))}
		start := time.Now()
		res, err := t.call(m, callTimeout)
		if err != nil {
			return fail("call %d of %d failed: %s", i+1, n, statusText(err)).with(t.repro(m))
		}
		lat = append(lat, time.Since(start))
		if !jsonEqual(res.Payload, m.Payload) {
			return fail("call %d of %d came back with %q", i+1, n, clip(res.Payload)).with(t.repro(m))
		}
	}
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	t.r.mu.Lock()
	t.r.seqP50, t.r.seqP99 = p50, p99
	t.r.mu.Unlock()
	return pass("%d calls, p50 %s, p99 %s", n, p50.Round(time.Microsecond), p99.Round(time.Microsecond))
}

// --- timing ---

func checkConcurrent(t *T) Outcome {
	const n, each = 4, 500 * time.Millisecond
	payload := []byte(fmt.Sprintf(`{"ms":%d}`, each.Milliseconds()))
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = t.call(&client.Message{FunctionName: t.fn("sleep"), Payload: payload}, 10*time.Second)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	m := &client.Message{FunctionName: t.fn("sleep"), Payload: payload}
	for _, err := range errs {
		if err != nil {
			return fail("a sleep call failed: %s", statusText(err)).with(t.repro(m))
		}
	}
	if limit := each * 3 / 2; took > limit {
		return fail("%d parallel %s sleeps took %s (limit %s): the runtime serves calls one after another", n, each, took.Round(time.Millisecond), limit)
	}
	return pass("%d parallel %s sleeps took %s", n, each, took.Round(time.Millisecond))
}

func checkDeadline(t *T) Outcome {
	m := &client.Message{FunctionName: t.fn("sleep"), Payload: []byte(`{"ms":5000}`)}
	start := time.Now()
	_, err := t.call(m, 200*time.Millisecond)
	took := time.Since(start)
	if status.Code(err) != codes.DeadlineExceeded {
		return fail("a 5 s sleep under a 200 ms deadline ended with %s after %s, want DEADLINE_EXCEEDED", statusText(err), took.Round(time.Millisecond)).with(t.repro(m, "--timeout", "200ms"))
	}
	if took > time.Second {
		return fail("DEADLINE_EXCEEDED came after %s, not within 1 s", took.Round(time.Millisecond))
	}
	next := &client.Message{FunctionName: t.fn("echo"), Payload: []byte("next")}
	start = time.Now()
	_, err = t.call(next, 5*time.Second)
	wait := time.Since(start)
	if err != nil {
		return fail("the call after the deadline failed: %s", statusText(err)).with(t.repro(next))
	}
	if wait > 500*time.Millisecond {
		return fail("the call after the deadline took %s: the abandoned call still holds the runtime", wait.Round(time.Millisecond))
	}
	return pass("DEADLINE_EXCEEDED after %s; the next call took %s", took.Round(time.Millisecond), wait.Round(time.Millisecond))
}

// --- shutdown, on a fresh instance ---

type shutdownResult struct {
	err      error // the harness could not run the scenario
	notReady error
	drainErr error         // the in-flight call's outcome
	drainRan bool          // a call was in flight
	drainEnd time.Time     // when the in-flight call ended
	sent     time.Time     // when SIGTERM was sent
	exited   bool          // exited by itself within grace
	exit     launch.Exit   // how it ended
	took     time.Duration // from SIGTERM to exit
	orphans  []int
	stderr   string
}

// drainPayload is the sleep of the call kept in flight across SIGTERM.
const drainPayload = `{"ms":1000}`

type shutdownOnce struct {
	once sync.Once
	res  *shutdownResult
}

// shutdownScenario starts a fresh instance, puts a sleep call in flight,
// sends SIGTERM to the group, and watches what happens. It runs once; the
// shutdown checks read its result.
func (t *T) shutdownScenario() *shutdownResult {
	t.r.shutdown.once.Do(func() {
		res := &shutdownResult{}
		t.r.shutdown.res = res
		inst, err := t.r.startInstance(t.ctx, "oe-rt-conform-shutdown")
		if err != nil {
			res.err = err
			return
		}
		defer inst.stop(0)
		if inst.readyErr != nil {
			res.notReady = inst.readyErr
			return
		}
		drainDone := make(chan error, 1)
		var drainEnd time.Time
		if t.r.fixtures["sleep"] {
			res.drainRan = true
			go func() {
				ctx, cancel := context.WithTimeout(t.ctx, t.r.cfg.Grace+5*time.Second)
				defer cancel()
				_, err := inst.cli.Call(ctx, &client.Message{FunctionName: t.fn("sleep"), Payload: []byte(drainPayload)})
				drainEnd = time.Now()
				drainDone <- err
			}()
			// Let the call reach the runtime before the signal.
			time.Sleep(200 * time.Millisecond)
		}
		sent := time.Now()
		res.sent = sent
		_ = inst.proc.Signal(syscall.SIGTERM)
		timer := time.NewTimer(t.r.cfg.Grace)
		defer timer.Stop()
		select {
		case <-inst.proc.Done():
			res.exited = true
		case <-timer.C:
		case <-t.ctx.Done():
		}
		res.took = time.Since(sent)
		if res.exited {
			res.exit, _ = inst.proc.ExitStatus()
			// Give descendants a moment to follow their parent.
			time.Sleep(50 * time.Millisecond)
			res.orphans = inst.proc.Leftovers()
		}
		inst.proc.Kill()
		if res.drainRan {
			select {
			case res.drainErr = <-drainDone:
				res.drainEnd = drainEnd
			case <-time.After(5 * time.Second):
				res.drainErr = fmt.Errorf("the call in flight never ended")
			}
		}
		res.stderr = inst.stderrTail(20)
	})
	return t.r.shutdown.res
}

func (s *shutdownResult) unusable() *Outcome {
	switch {
	case s.err != nil:
		o := skip("could not start a fresh instance: %v", s.err)
		return &o
	case s.notReady != nil:
		o := fail("a fresh instance did not become ready: %v", s.notReady)
		return &o
	}
	return nil
}

func checkShutdownSigterm(t *T) Outcome {
	s := t.shutdownScenario()
	if o := s.unusable(); o != nil {
		return *o
	}
	if !s.exited {
		return fail("still running %s after SIGTERM: handle SIGTERM, stop accepting calls, finish those in flight and exit", t.r.cfg.Grace)
	}
	if s.exit.Signal == syscall.SIGTERM {
		return fail("died by SIGTERM's default action after %s instead of handling it: calls in flight are lost that way", s.took.Round(time.Millisecond))
	}
	return pass("exited by itself %s after SIGTERM (%s)", s.took.Round(time.Millisecond), s.exit)
}

func checkShutdownExitCode(t *T) Outcome {
	s := t.shutdownScenario()
	if o := s.unusable(); o != nil {
		return *o
	}
	if !s.exited {
		return fail("did not exit within %s of SIGTERM", t.r.cfg.Grace)
	}
	if s.exit.Signal != 0 || s.exit.Code != 0 {
		return fail("ended with %s after SIGTERM, want exit status 0", s.exit)
	}
	return pass("exit status 0")
}

func checkShutdownDrain(t *T) Outcome {
	s := t.shutdownScenario()
	if o := s.unusable(); o != nil {
		return *o
	}
	if !s.drainRan {
		return skip("no sleep fixture to keep a call in flight")
	}
	if s.drainErr != nil {
		return fail("the call in flight when SIGTERM arrived failed: %s", statusText(s.drainErr))
	}
	if !s.drainEnd.After(s.sent) {
		return skip("the call ended before SIGTERM could be sent (an overloaded machine?): nothing was in flight to drain; run again")
	}
	return pass("the 1 s call in flight completed, %s after SIGTERM", s.drainEnd.Sub(s.sent).Round(time.Millisecond))
}

func checkShutdownOrphans(t *T) Outcome {
	s := t.shutdownScenario()
	if o := s.unusable(); o != nil {
		return *o
	}
	if !s.exited {
		return skip("the runtime did not exit after SIGTERM, so what it leaves behind cannot be seen (see shutdown.sigterm)")
	}
	if len(s.orphans) > 0 {
		return fail("%d descendant process(es) outlived the runtime (pids %v); the harness has killed them", len(s.orphans), s.orphans)
	}
	return pass("no descendant outlived the runtime")
}

// --- resources ---

func checkMemory(t *T) Outcome {
	u := t.r.usage()
	if u.Samples == 0 {
		return skip("no /proc to measure memory")
	}
	lim := t.r.cfg.MemoryLimit
	if u.PeakRSS > lim {
		return fail("peak RSS %s exceeds %s", mib(u.PeakRSS), mib(lim))
	}
	return pass("peak RSS %s (limit %s)", mib(u.PeakRSS), mib(lim))
}

func checkThreads(t *T) Outcome {
	u := t.r.usage()
	if u.Samples == 0 {
		return skip("no /proc to count threads")
	}
	if u.PeakThreads > t.r.cfg.ThreadLimit {
		return fail("peak %d threads exceeds %d", u.PeakThreads, t.r.cfg.ThreadLimit)
	}
	return pass("peak %d threads (limit %d)", u.PeakThreads, t.r.cfg.ThreadLimit)
}

func checkLimits(t *T) Outcome {
	if t.r.cgroupErr != nil {
		return skip("cannot enforce limits here: %v", t.r.cgroupErr)
	}
	if t.r.cgroup == nil {
		return skip("no cgroup limits in force: pass --limit-memory and --limit-threads")
	}
	if e, ok := t.inst.proc.ExitStatus(); ok {
		return fail("the runtime ended under the limits (%s): memory.max %s, pids.max %d", e, mib(t.r.cfg.MemoryLimit), t.r.cfg.ThreadLimit)
	}
	return pass("ran the suite in a cgroup with memory.max %s and pids.max %d", mib(t.r.cfg.MemoryLimit), t.r.cfg.ThreadLimit)
}

// --- helpers ---

func statusText(err error) string {
	if err == nil {
		return "OK"
	}
	st := status.Convert(err)
	return client.CodeName(st.Code()) + ": " + st.Message()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomHex(n int) string { return fmt.Sprintf("%x", randomBytes(n)) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return string(b)
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// byteDiff describes where got departs from want.
func byteDiff(got, want []byte) string {
	n := min(len(got), len(want))
	for i := 0; i < n; i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("%d bytes back, first difference at byte %d (%#02x, want %#02x)", len(got), i, got[i], want[i])
		}
	}
	return fmt.Sprintf("%d bytes back, want %d", len(got), len(want))
}
