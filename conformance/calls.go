package conformance

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/oe-rt/oe-rt/client"
)

// The call checks: what a Call gets back. They run one at a time on the
// main instance, so that every call in flight belongs to one check.

var callUnknownFunction = &Check{ID: "call.unknown-function", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
	Description: "an unconfigured FunctionName gets a non-OK status and the runtime keeps serving",
	Hint: "Look the FunctionName up and answer an error status, without crashing or hanging.\n" +
		"grpc-go: status.Errorf(codes.NotFound, ...). Python grpcio: context.abort(grpc.StatusCode.NOT_FOUND, ...). Node @grpc/grpc-js: callback({code: grpc.status.NOT_FOUND, details: ...}).",
	run: checkUnknownFunction}

func checkUnknownFunction(c *checkCtx) Outcome {
	m := &client.Message{FunctionName: "oe-rt-no-such-function-" + randomHex(4), Payload: []byte("x")}
	_, err := c.call(m, callTimeout)
	if err == nil {
		return fail("calling the unconfigured function %q returned OK; it must fail (NOT_FOUND)", m.FunctionName).with(c.repro(m))
	}
	if err.kind != kindAnswered {
		return c.failed(err, fmt.Sprintf("a call to the unconfigured function %q", m.FunctionName)).with(c.repro(m))
	}
	if o := c.stillServing("an unknown function"); o != nil {
		return *o
	}
	return pass("%s", err.statusText())
}

var callMalformed = &Check{ID: "call.malformed", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
	Description: "a request that is not a valid FunctionMessage gets a non-OK status; the runtime keeps serving",
	Hint:        "Let the gRPC library decode requests with the generated code (grpc-go, grpcio and grpc-js reject bytes that do not parse); a custom codec or raw-bytes handler must reject them too, not serve an empty message.",
	run:         checkMalformed}

// malformed is a FunctionMessage cut short: field 4 (Payload) announces
// 127 bytes and two follow. Every protobuf parser rejects it.
var malformed = []byte{0x22, 0x7f, 'x', 'y'}

func checkMalformed(c *checkCtx) Outcome {
	_, err := c.callRaw("", malformed, callTimeout)
	const what = "a truncated FunctionMessage (bytes 22 7f 78 79)"
	if err == nil {
		return fail("%s got OK; it must be rejected", what)
	}
	if err.kind != kindAnswered {
		return c.failed(err, what)
	}
	if o := c.stillServing("a malformed request"); o != nil {
		return *o
	}
	return pass("%s", err.statusText())
}

var callOversize = &Check{ID: "call.oversize", Level: SHOULD, phase: phaseLarge, Needs: []string{"echo"},
	Description: "a request over the {maxmsg} limit gets RESOURCE_EXHAUSTED; the runtime keeps serving",
	Hint: "Apply server.message.length.max to both directions of the server.\n" +
		"grpc-go: grpc.MaxRecvMsgSize(n), grpc.MaxSendMsgSize(n). Python grpcio: options grpc.max_receive_message_length and grpc.max_send_message_length. Node @grpc/grpc-js: the same two options in new grpc.Server({...}).",
	run: checkOversize}

func checkOversize(c *checkCtx) Outcome {
	limit := c.cfg().maxMessageSize()
	m := &client.Message{FunctionName: c.fn("echo"), Payload: randomBytes(limit + 64<<10)}
	what := fmt.Sprintf("a %s request (over the %s limit)", size(int64(len(m.Payload))), size(int64(limit)))
	res, err := c.call(m, largeTimeout)
	switch {
	case err == nil:
		return fail("%s got OK with a %s reply; over the limit it must get RESOURCE_EXHAUSTED (server.message.length.max)", what, size(int64(len(res.Payload))))
	case err.kind == kindTooLarge:
		return fail("the runtime accepted %s and %s", what, err.describe())
	case err.kind == kindAnswered && err.status.Code() != codes.ResourceExhausted:
		return fail("%s got %s, want RESOURCE_EXHAUSTED", what, err.statusText())
	case err.kind != kindAnswered:
		return c.failed(err, what)
	}
	if o := c.stillServing("an oversized request"); o != nil {
		return *o
	}
	return pass("%s", err.statusText())
}

var callUnimplemented = &Check{ID: "call.unimplemented", Level: SHOULD, phase: phaseCalls,
	Description: "another method of the service gets UNIMPLEMENTED",
	Hint:        "Register only the Call method with the generated service code, and no catch-all: grpc-go without grpc.UnknownServiceHandler; Python grpcio without a generic handler that accepts every method; grpc-js answers UNIMPLEMENTED by itself.",
	run:         checkUnimplemented}

func checkUnimplemented(c *checkCtx) Outcome {
	method := "/" + c.inst.cli.Schema().Service() + "/OeRtNoSuchMethod"
	_, err := c.callRaw(method, nil, callTimeout)
	switch {
	case err == nil:
		return fail("%s got OK, want UNIMPLEMENTED", method)
	case err.kind != kindAnswered:
		return c.failed(err, "a call to "+method)
	case err.status.Code() != codes.Unimplemented:
		return fail("%s got %s, want UNIMPLEMENTED", method, err.statusText())
	}
	return pass("%s: UNIMPLEMENTED", method)
}

var callFields = &Check{ID: "call.fields", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
	Description: "ID, QOS, Topic, FunctionName, FunctionInvokeID come back unchanged",
	Hint: "Answer with the request message itself, replacing only Payload; never build a fresh message.\n" +
		"grpc-go: m.Payload = out; return m. Python grpcio: request.Payload = out; return request. Node @grpc/grpc-js: callback(null, {...call.request, Payload: out}).",
	run: checkFields}

func checkFields(c *checkCtx) Outcome {
	m := &client.Message{
		ID: 0x1234_5678_9abc, QOS: 1, Topic: "oe-rt/conform/fields",
		Payload: []byte(`{"fields":true}`), FunctionName: c.fn("echo"), FunctionInvokeID: "oe-rt-" + randomHex(8),
	}
	if c.inst.cli.Schema().HasTimestamp() {
		m.Timestamp = -1_700_000_000_123
	}
	res, err := c.call(m, callTimeout)
	if err != nil {
		return c.failed(err, "the echo call").with(c.repro(m))
	}
	if diffs := fieldDiffs(m, res, m.Timestamp != 0); diffs != "" {
		return fail("the response must be the request with only Payload replaced: %s", diffs).with(c.repro(m))
	}
	return pass("all fields came back unchanged")
}

var echoBytes = &Check{ID: "echo.bytes", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
	Description: "non-JSON bytes (invalid UTF-8, NUL, 1 B to 1 MiB) come back byte for byte",
	Hint:        "Pass a payload that is not JSON to the function as bytes and return bytes as they are: Python bytes (no .decode()/.encode() round trip), Node Buffer (no toString()); never append a newline.",
	run:         checkEchoBytes}

func checkEchoBytes(c *checkCtx) Outcome {
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
	for _, k := range cases {
		m := &client.Message{FunctionName: c.fn("echo"), Payload: k.payload}
		res, err := c.call(m, largeTimeout)
		if err != nil {
			return c.failed(err, "the echo of "+k.name).with(c.repro(m))
		}
		if !bytes.Equal(res.Payload, k.payload) {
			return fail("the echo of %s (%d bytes) came back different: %s", k.name, len(k.payload), byteDiff(res.Payload, k.payload)).with(c.repro(m))
		}
	}
	return pass("%d payloads from 1 B to 1 MiB came back byte for byte", len(cases))
}

var echoJSON = &Check{ID: "echo.json", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
	Description: "a JSON payload comes back as an equal JSON value",
	Hint:        "Decode a JSON payload and encode the result with the language's JSON library (json.loads/json.dumps, JSON.parse/JSON.stringify, encoding/json); do not build JSON by hand or encode it twice.",
	run:         checkEchoJSON}

func checkEchoJSON(c *checkCtx) Outcome {
	in := []byte(`{"name":"oe-rt","n":42,"pi":3.25,"ok":true,"none":null,"list":[1,"two",{"three":3}],"unicode":"héllo ✓"}`)
	m := &client.Message{FunctionName: c.fn("echo"), Payload: in}
	res, err := c.call(m, callTimeout)
	if err != nil {
		return c.failed(err, "the echo of a JSON object").with(c.repro(m))
	}
	var want, got any
	_ = json.Unmarshal(in, &want)
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		return fail("the response is not JSON: %v: %q", err, clip(res.Payload)).with(c.repro(m))
	}
	if !reflect.DeepEqual(got, want) {
		return fail("the JSON came back as a different value: %q", clip(res.Payload)).with(c.repro(m))
	}
	return pass("an equal JSON value came back")
}

var echoEmpty = &Check{ID: "echo.empty", Level: SHOULD, phase: phaseCalls, Needs: []string{"echo"},
	Description: "an empty payload comes back empty, or as {} (what Baetyl's own runtimes return)",
	Hint:        "Turn an empty payload into an empty value (or {}) for the function, and a result of nothing into an empty payload: Python None -> b\"\" (not json.dumps(None), \"null\"); Node undefined -> Buffer.alloc(0).",
	run:         checkEchoEmpty}

func checkEchoEmpty(c *checkCtx) Outcome {
	m := &client.Message{FunctionName: c.fn("echo")}
	res, err := c.call(m, callTimeout)
	if err != nil {
		return c.failed(err, "the echo of an empty payload").with(c.repro(m))
	}
	switch {
	case len(res.Payload) == 0:
		return pass("empty in, empty out: %s", publishedEmpty(c.cfg().Profile, true))
	case jsonEqual(res.Payload, []byte("{}")):
		return pass("empty in, {} out: %s", publishedObject(c.cfg().Profile))
	}
	return fail("the echo of an empty payload returned %d bytes: %q; want an empty payload or {}", len(res.Payload), clip(res.Payload)).with(c.repro(m))
}

var echoLarge = &Check{ID: "echo.large", Level: SHOULD, phase: phaseLarge, Needs: []string{"echo"},
	Description: "a payload just under the {maxmsg} limit comes back whole",
	Hint:        "Set both the receive and the send limit to server.message.length.max (see call.oversize for each stack's option); then look for a copy that truncates or a text conversion of binary data (see echo.bytes).",
	run:         checkEchoLarge}

func checkEchoLarge(c *checkCtx) Outcome {
	p := append([]byte{0xff}, randomBytes(c.cfg().maxMessageSize()-64<<10-1)...)
	m := &client.Message{FunctionName: c.fn("echo"), Payload: p}
	res, err := c.call(m, largeTimeout)
	if err != nil {
		return c.failed(err, fmt.Sprintf("the echo of %s", size(int64(len(p))))).with(c.repro(m))
	}
	if !bytes.Equal(res.Payload, p) {
		return fail("the echo of %d bytes came back different: %s", len(p), byteDiff(res.Payload, p)).with(c.repro(m))
	}
	return pass("%d bytes came back whole", len(p))
}

var contextMetadata = &Check{ID: "context.metadata", Level: MUST, phase: phaseCalls, Needs: []string{"context"},
	Description: "the function sees the call's QOS, Topic, FunctionName, FunctionInvokeID",
	Hint:        "Build the function's context from the request under Baetyl's names: messageQOS, messageTopic, functionName, functionInvokeID; the context fixture returns them as JSON.",
	run:         checkContext}

func checkContext(c *checkCtx) Outcome {
	m := &client.Message{ID: 7, QOS: 1, Topic: "oe-rt/conform/context", Payload: []byte(`{"context":true}`),
		FunctionName: c.fn("context"), FunctionInvokeID: "oe-rt-" + randomHex(8)}
	res, err := c.call(m, callTimeout)
	if err != nil {
		return c.failed(err, "the call to the context fixture").with(c.repro(m))
	}
	var got map[string]any
	if err := json.Unmarshal(res.Payload, &got); err != nil {
		return fail("the context fixture must return a JSON object; got %q", clip(res.Payload)).with(c.repro(m))
	}
	want := map[string]any{"messageQOS": float64(m.QOS), "messageTopic": m.Topic, "functionName": m.FunctionName, "functionInvokeID": m.FunctionInvokeID}
	var diffs []string
	for _, k := range []string{"messageQOS", "messageTopic", "functionName", "functionInvokeID"} {
		if !reflect.DeepEqual(got[k], want[k]) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", k, got[k], want[k]))
		}
	}
	if len(diffs) > 0 {
		return fail("the function saw the wrong context: %s", strings.Join(diffs, "; ")).with(c.repro(m))
	}
	return pass("QOS, Topic, FunctionName and FunctionInvokeID reached the function")
}

var noneEmpty = &Check{ID: "none.empty", Level: MUST, phase: phaseCalls, Needs: []string{"none"},
	Description: "a function that returns nothing gives OK and an empty payload",
	Hint:        "A function that returns nothing gives OK and an empty payload: Python None -> b\"\" (not \"null\"), Node undefined/null -> an empty Buffer, Go nil -> nil.",
	run:         checkNone}

func checkNone(c *checkCtx) Outcome {
	m := &client.Message{FunctionName: c.fn("none"), Payload: []byte(`{"none":true}`)}
	res, err := c.call(m, callTimeout)
	if err != nil {
		return c.failed(err, "the call to the none fixture").with(c.repro(m))
	}
	if len(res.Payload) != 0 {
		return fail("a function that returns nothing must give an empty payload; got %q", clip(res.Payload)).with(c.repro(m))
	}
	return pass("OK with an empty payload: %s", publishedEmpty(c.cfg().Profile, false))
}

var failStatus = &Check{ID: "fail.status", Level: MUST, phase: phaseCalls, Needs: []string{"fail", "echo"},
	Description: "a failing function gives a non-OK status carrying its message; the next call succeeds",
	Hint: "Catch what the function raises and answer a non-OK status carrying its message, then keep serving.\n" +
		"grpc-go: status.Error(codes.Unknown, err.Error()), and recover panics. Python grpcio: let it raise (UNKNOWN) or context.abort(grpc.StatusCode.UNKNOWN, str(e)). Node @grpc/grpc-js: callback({code: grpc.status.UNKNOWN, details: err.message}); catch rejections.",
	run: checkFail}

func checkFail(c *checkCtx) Outcome {
	m := &client.Message{FunctionName: c.fn("fail"), Payload: []byte(`{"fail":true}`)}
	_, err := c.call(m, callTimeout)
	if err == nil {
		return fail("the fail fixture returned OK; a failing function must give a non-OK status").with(c.repro(m))
	}
	if err.kind != kindAnswered {
		return c.failed(err, "the call to the fail fixture").with(c.repro(m))
	}
	if !strings.Contains(err.status.Message(), "conformance failure") {
		return fail("the status (%s) does not carry the function's message %q", err.statusText(), "conformance failure").with(c.repro(m))
	}
	next := &client.Message{FunctionName: c.fn("echo"), Payload: []byte("next")}
	if _, err := c.call(next, callTimeout); err != nil {
		return c.failed(err, "the echo call after the failing function").with(c.repro(next))
	}
	return pass("%s", err.statusText())
}

var callSequence = &Check{ID: "call.sequence", Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
	Description: "200 calls in a row all succeed (p50/p99 reported)",
	Hint:        "Look at the call number that failed and the output shown: state leaking from call to call (a shared buffer, a counter, a handle opened per call and never closed), a limit on calls per connection, a cache that evicts.",
	run:         checkSequence}

func checkSequence(c *checkCtx) Outcome {
	const n = 200
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		m := &client.Message{ID: uint64(i + 1), FunctionName: c.fn("echo"), Payload: []byte(fmt.Sprintf(`{"seq":%d}`, i))}
		start := time.Now()
		res, err := c.call(m, callTimeout)
		if err != nil {
			return c.failed(err, fmt.Sprintf("call %d of %d to echo", i+1, n)).with(c.repro(m))
		}
		lat = append(lat, time.Since(start))
		if !jsonEqual(res.Payload, m.Payload) {
			return fail("call %d of %d came back with %q", i+1, n, clip(res.Payload)).with(c.repro(m))
		}
	}
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	o := pass("%d calls, p50 %s, p99 %s", n, p50.Round(time.Microsecond), p99.Round(time.Microsecond))
	o.figures = map[string]float64{"p50_ms": ms(p50), "p99_ms": ms(p99)}
	return o
}

// --- helpers ---

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func randomHex(n int) string { return fmt.Sprintf("%x", randomBytes(n)) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// size renders a byte count: "4.0 MiB", "64 KiB", "12 B".
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return mib(n)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

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
