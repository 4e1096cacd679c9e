package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/oe-rt/oe-rt/client"
)

// The oracles judge every answer conform receives, wherever the call was
// made: a check's, a scenario's (the shutdown scenario, the function
// manager's load), a hang probe's. They run in the instance's call record
// (instance.call), as the answer comes in, so they cost the run nothing
// after the calls. Each rule is owned by a check; a broken rule fails the
// check that owns it, naming the first call that broke it:
//
//   - the fields (ID, QOS, Topic, FunctionName, FunctionInvokeID, and
//     Timestamp where the schema has it) come back as sent: call.fields;
//   - an echo's payload comes back as sent: empty as empty or {}
//     (echo.empty), JSON as an equal JSON value with exact numbers
//     (echo.json), anything else byte for byte (echo.bytes); a call made
//     by an echo check is that check's;
//   - a sleep answered OK took at least the time asked: the check that
//     made the call, shutdown.drain for the shutdown scenario's, and
//     call.concurrent (which relies on sleeps) for any other.
//
// The checks that own a rule judged over the whole run (ownsRunWideRule)
// are recorded once every call of the run was made.

// The IDs of the checks that own the oracles' rules (constants: the
// check values' functions make calls, which the oracles judge).
const (
	idFields     = "call.fields"
	idEchoBytes  = "echo.bytes"
	idEchoJSON   = "echo.json"
	idEchoEmpty  = "echo.empty"
	idConcurrent = "call.concurrent"
	idDrain      = "shutdown.drain"
)

// violation is a broken rule: the call that broke it and how.
type violation struct {
	owner string // the ID of the check that owns the rule
	rule  string // what the rule says, for the message
	inst  *instance
	rec   *callRecord
	sent  *client.Message
	words string // what came back against what was sent
}

// oracleLog keeps, per owning check, the first violation and how many
// calls broke its rules.
type oracleLog struct {
	mu    sync.Mutex
	first map[string]*violation
	count map[string]int
}

func (l *oracleLog) add(v *violation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		l.first, l.count = map[string]*violation{}, map[string]int{}
	}
	if l.first[v.owner] == nil {
		l.first[v.owner] = v
	}
	l.count[v.owner]++
}

// of returns the first violation of the rules a check owns, and how many
// calls broke them.
func (l *oracleLog) of(id string) (*violation, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first[id], l.count[id]
}

// ownsRunWideRule reports whether a check owns a rule that calls made
// after it ran can break: it is recorded once every call was made.
func ownsRunWideRule(c *Check) bool {
	switch c.ID {
	case idFields, idEchoBytes, idEchoJSON, idEchoEmpty, idConcurrent:
		return true
	}
	return false
}

// judge runs the oracles on an answer (m sent, res received OK) and
// records what breaks a rule.
func (inst *instance) judge(rec *callRecord, m, res *client.Message) {
	if inst.n == 0 || res == nil { // the reference is not judged
		return
	}
	r := inst.r
	add := func(owner, rule, words string) {
		r.oracles.add(&violation{owner: owner, rule: rule, inst: inst, rec: rec, sent: m, words: words})
	}
	if d := fieldDiffs(m, res, inst.cli.Schema().HasTimestamp()); d != "" {
		add(idFields, "the response must be the request with only Payload replaced", d)
	}
	switch r.roleOf(m.FunctionName) {
	case "echo":
		owner, words := echoVerdict(m.Payload, res.Payload)
		if words == "" {
			return
		}
		if strings.HasPrefix(rec.owner, "echo.") {
			owner = rec.owner // the echo check judges its own calls
		}
		add(owner, "an echo must come back as sent", words)
	case "sleep":
		asked, ok := sleepAsked(m.Payload)
		if took := rec.end.Sub(rec.start); ok && took < asked {
			add(sleepOwner(rec.owner), "a sleep answered OK must take at least the time asked",
				fmt.Sprintf("sleep %d ms answered OK after %s", asked.Milliseconds(), took.Round(time.Millisecond)))
		}
	}
}

// sleepOwner is the check that owns the sleep rule for a call made by
// owner.
func sleepOwner(owner string) string {
	switch {
	case owner == scenarioOwner:
		return idDrain
	case !strings.Contains(owner, " "): // a check's ID, not a scenario's words
		return owner
	}
	return idConcurrent
}

// fieldDiffs says which fields did not come back as sent, or "".
func fieldDiffs(m, res *client.Message, timestamp bool) string {
	var diffs []string
	cmp := func(name string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %#v, want %#v", name, got, want))
		}
	}
	cmp("ID", res.ID, m.ID)
	cmp("QOS", res.QOS, m.QOS)
	cmp("Topic", res.Topic, m.Topic)
	cmp("FunctionName", res.FunctionName, m.FunctionName)
	cmp("FunctionInvokeID", res.FunctionInvokeID, m.FunctionInvokeID)
	if timestamp {
		cmp("Timestamp", res.Timestamp, m.Timestamp)
	}
	return strings.Join(diffs, "; ")
}

// echoVerdict judges an echo: the check owning the payload's class, and
// what is wrong ("" when it came back as sent; the owner is then "": the
// same bytes came back, whatever their class, and nothing was parsed).
func echoVerdict(sent, got []byte) (owner, words string) {
	switch {
	case len(sent) > 0 && bytes.Equal(sent, got):
		return "", ""
	case len(sent) == 0:
		if len(got) == 0 || jsonExactEqual(got, []byte("{}")) {
			return idEchoEmpty, ""
		}
		return idEchoEmpty, fmt.Sprintf("sent an empty payload, got %d bytes: %q; want an empty payload or {}", len(got), clip(got))
	case json.Valid(sent):
		if jsonExactEqual(sent, got) || (len(got) == 0 && isNothing(sent)) {
			return idEchoJSON, ""
		}
		return idEchoJSON, fmt.Sprintf("sent the JSON %s (%d bytes), got %s (%d bytes): not an equal JSON value (numbers compared exactly)",
			quoteClip(sent), len(sent), quoteClip(got), len(got))
	}
	if bytes.Equal(sent, got) {
		return idEchoBytes, ""
	}
	return idEchoBytes, fmt.Sprintf("sent %s, got %s: %s", bytesWords(sent), bytesWords(got), byteDiff(got, sent))
}

// isNothing reports whether a JSON text is null or the empty string: a
// function that returns either returns nothing, which every runtime of
// the convention answers as an empty payload (Python None, Go nil; Node
// null and "", as Baetyl's own Node runtime does), so that their echo may
// come back empty.
func isNothing(b []byte) bool {
	s := string(bytes.TrimSpace(b))
	return s == "null" || s == `""`
}

// bytesWords describes a payload: "12 bytes \"hello world\\n\"", "1.0 MiB of
// bytes starting 0xff 0x00 …".
func bytesWords(b []byte) string {
	if len(b) <= 64 {
		return fmt.Sprintf("%d bytes %q", len(b), b)
	}
	return fmt.Sprintf("%d bytes starting %q…", len(b), b[:32])
}

func quoteClip(b []byte) string {
	if len(b) > 120 {
		return fmt.Sprintf("%q…", b[:120])
	}
	return fmt.Sprintf("%q", b)
}

// sleepAsked reads the time a sleep call asks for: {"ms": N}.
func sleepAsked(payload []byte) (time.Duration, bool) {
	var arg struct {
		MS *json.Number `json:"ms"`
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	if d.Decode(&arg) != nil || arg.MS == nil {
		return 0, false
	}
	n, err := arg.MS.Int64()
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// jsonExactEqual reports whether a and b are JSON texts of equal values,
// numbers compared exactly (2^53+1 is not 2^53, 1.0 is 1, 1e2 is 100).
func jsonExactEqual(a, b []byte) bool {
	x, err1 := decodeExact(a)
	y, err2 := decodeExact(b)
	return err1 == nil && err2 == nil && exactEqual(x, y)
}

func decodeExact(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("more after the JSON value")
	}
	return v, nil
}

func exactEqual(x, y any) bool {
	switch x := x.(type) {
	case map[string]any:
		y, ok := y.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !exactEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := y.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !exactEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := y.(json.Number)
		return ok && numbersEqual(string(x), string(y))
	}
	return x == y // string, bool, nil
}

// numbersEqual compares two JSON numbers exactly. Numbers with huge
// exponents are compared as text rather than expanded.
func numbersEqual(a, b string) bool {
	if a == b {
		return true
	}
	if hugeExponent(a) || hugeExponent(b) {
		return false
	}
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

func hugeExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return false
	}
	e := strings.TrimLeft(s[i+1:], "+-0")
	return len(e) > 4
}

// oracleOutcome turns the violations of the rules a check owns into its
// outcome: a check that passed on its own calls fails on the first call
// of the run that broke its rule; one that failed keeps its own message
// and says the rule was broken elsewhere too.
func (r *runner) oracleOutcome(c *Check, o Outcome) Outcome {
	v, n := r.oracles.of(c.ID)
	if v == nil || o.Status == Error {
		return o
	}
	msg := v.describe(r.started, n)
	if o.Status == Fail && (v.rec.owner == c.ID || c.ID == idDrain) {
		return o // the check judged the call itself, and said so
	}
	if o.Status == Fail {
		o.Message += "; " + msg
		return o
	}
	out := fail("%s", msg).with(r.repro(c.ID, v.sent))
	out.figures = o.figures
	out.output = v.inst.lines(v.rec.start, v.rec.end.Add(50*time.Millisecond))
	if out.output == nil {
		out.output = []OutputLine{}
	}
	return out
}

// describe names the call and says what broke: "call #16 to none on
// instance #1 (main), made by none.empty 253ms into the run: the response
// must be …: FunctionName = "", want "none" (3 calls of the run broke this
// rule; the first is shown)".
func (v *violation) describe(t0 time.Time, n int) string {
	s := fmt.Sprintf("call #%d to %s on instance #%d (%s), made by %s %s into the run: %s: %s",
		v.rec.seq, v.rec.function, v.inst.n, v.inst.role, v.rec.owner, v.rec.start.Sub(t0).Round(time.Millisecond), v.rule, v.words)
	if n > 1 {
		s += fmt.Sprintf(" (%d calls of the run broke this check's rules; the first is shown)", n)
	}
	return s
}
