package conformance

// The sweep: the echo's input space, generated from the run's seed
// (Config.Seed, printed in every report), so that a run replays exactly
// with --seed. The cases are a fixed list of classes — empty, single bytes,
// sizes around every power of two up to the message limit, UTF-8 text,
// binary, JSON of every type and size, integers beyond 2^53 — whose
// contents the seed draws (sweepgen.go): bulk bytes from a PCG stream,
// text and JSON values from pgregory.net/rapid's generators
// (Generator.Example with the case's seed: rapid's deterministic draw
// outside a property test).
//
// A case that does not come back as sent is shrunk before it is reported
// (shrink.go): by size toward the power-of-two boundaries below it, by
// content toward one repeated byte, by structure for JSON. rapid's own
// shrinker is not used: it runs only inside rapid.Check, whose seed and
// failure files are process-wide (command-line flags, testdata/rapid), and
// it shrinks a value choice by choice, which for a payload of 700 KiB is
// thousands of calls carrying hundreds of KiB each.

import (
	"bytes"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"pgregory.net/rapid"

	"github.com/oe-rt/oe-rt/client"
)

// The sweep's classes (sweepCase.class): every one appears in every run.
const (
	classEmpty        = "empty"
	classByte         = "single byte"
	classSize         = "size"
	classTextASCII    = "text/ascii"
	classTextMulti    = "text/multi-byte"
	classTextNewlines = "text/newlines"
	classTextNUL      = "text/nul"
	classBinary       = "binary"
	classJSONNull     = "json/null"
	classJSONBool     = "json/bool"
	classJSONNumber   = "json/number"
	classJSONString   = "json/string"
	classJSONArray    = "json/array"
	classJSONObject   = "json/object"
	classJSONNested   = "json/nested"
	classJSONLarge    = "json/large"
	classBigInt       = "json/big-integer"
)

// sweepClasses lists the classes, in the order the sweep sends them.
var sweepClasses = []string{
	classEmpty, classByte, classSize, classTextASCII, classTextMulti, classTextNewlines, classTextNUL, classBinary,
	classJSONNull, classJSONBool, classJSONNumber, classJSONString, classJSONArray, classJSONObject, classJSONNested,
	classJSONLarge, classBigInt,
}

// The sweep's budget: sizes up to fullTrioMax are sent as n−1, n and n+1
// around every power of two n; above it, one of the three, chosen by the
// seed (every run still crosses each boundary's neighbourhood, and the
// bytes of a run stay a few MiB).
const fullTrioMax = 128 << 10

// sweepHeadroom is left under the message limit for the message's other
// fields and framing (as echo.large does); an eighth of a limit under
// 512 KiB.
const sweepHeadroom = 64 << 10

// sweepRoom is the largest payload the sweep sends under a message limit.
func sweepRoom(limit int) int { return limit - min(sweepHeadroom, limit/8) }

// sweepCase is one payload of the sweep.
type sweepCase struct {
	n     int    // its number in the sweep, from 1
	class string // one of sweepClasses
	name  string // what it is, for messages: "65,537 bytes (64 KiB+1) of binary"
	owner string // the check that sends it: echo.sweep or echo.json-integers
	seed  uint64 // its own seed, drawn from the run's
	gen   func(seed uint64) []byte
	tree  func(seed uint64) *jnode // a JSON case's value, which shrinks by its structure
	text  bool                     // shrinks toward 'a' rather than 0x00
}

// payload generates the case's payload (the same bytes every time).
func (k *sweepCase) payload() []byte {
	if k.tree != nil {
		return k.tree(k.seed).encode()
	}
	return k.gen(k.seed)
}

// sweepCases returns the sweep for a seed and a message limit. The list
// and every payload depend on nothing else.
func sweepCases(seed uint64, limit int) []*sweepCase {
	l := &caseList{rng: rand.New(rand.NewPCG(seed, 0x6f652d7274))} // the cases' seeds and choices
	l.add(classEmpty, idSweep, "an empty payload", false, func(uint64) []byte { return []byte{} })
	l.singleBytes()
	l.sizes(sweepRoom(limit))
	l.texts()
	l.jsonValues(sweepRoom(limit))
	l.bigIntegers()
	return l.out
}

// caseList makes the sweep's cases in order, each with a seed drawn from
// rng, the draws in a fixed order (a seed replays the same cases).
type caseList struct {
	rng *rand.Rand
	out []*sweepCase
}

func (l *caseList) add(class, owner, name string, text bool, gen func(uint64) []byte) {
	l.out = append(l.out, &sweepCase{n: len(l.out) + 1, class: class, owner: owner, name: name, seed: l.rng.Uint64(), gen: gen, text: text})
}

func (l *caseList) addJSON(class, owner, name string, tree func(uint64) *jnode) {
	l.add(class, owner, name, false, nil)
	l.out[len(l.out)-1].tree = tree
}

// singleBytes: those that mean something to a parser, and a few the seed
// picks.
func (l *caseList) singleBytes() {
	singles := []byte{0x00, '\n', ' ', '"', '0', '{', 'a', 0x7f, 0x80, 0xc3, 0xfe, 0xff}
	for i := 0; i < 4; i++ {
		singles = append(singles, byte(l.rng.UintN(256)))
	}
	for _, b := range singles {
		l.add(classByte, idSweep, fmt.Sprintf("the single byte %#02x", b), false, func(uint64) []byte { return []byte{b} })
	}
}

// sizes: around every power of two up to room, and one size strictly
// inside 64 KiB–1 MiB, off every boundary.
func (l *caseList) sizes(room int) {
	for p := 1; p+1 <= room; p *= 2 {
		sizes := []int{p - 1, p, p + 1}
		if p > fullTrioMax {
			sizes = []int{sizes[l.rng.IntN(3)]}
		}
		for _, n := range sizes {
			if n < 1 {
				continue
			}
			fill := sizeFills[l.rng.IntN(len(sizeFills))]
			l.add(classSize, idSweep, fmt.Sprintf("%s (%s) of %s", countBytes(n), powerWords(n), fill.name), fill.text,
				func(s uint64) []byte { return fill.gen(s, n) })
		}
	}
	if room > 1<<20 {
		n := 64<<10 + 2 + l.rng.IntN(1<<20-64<<10-4)
		l.add(classSize, idSweep, fmt.Sprintf("%s of binary", countBytes(n)), false, func(s uint64) []byte { return binaryBytes(s, n) })
	}
}

// texts: UTF-8 text that is not JSON, and binary bytes.
func (l *caseList) texts() {
	l.add(classTextASCII, idSweep, "UTF-8 text, ASCII", true, textGen(textASCII))
	l.add(classTextMulti, idSweep, "UTF-8 text with multi-byte characters", true, textGen(textMulti))
	l.add(classTextNewlines, idSweep, "UTF-8 text with newlines", true, textGen(textNewlines))
	l.add(classTextNUL, idSweep, "UTF-8 text with NUL bytes", true, textGen(textNUL))
	l.add(classBinary, idSweep, "binary bytes (invalid UTF-8)", false, func(s uint64) []byte {
		return binaryBytes(s, 2+int(s%4000))
	})
	l.add(classBinary, idSweep, "binary bytes (invalid UTF-8)", false, func(s uint64) []byte {
		return binaryBytes(s, 2+int(s%40))
	})
}

// jsonValues: JSON of every type, and large JSON up to room; numbers
// within ±(2^53−1), so that every JSON library compares them equal.
func (l *caseList) jsonValues(room int) {
	const sweep = idSweep
	l.addJSON(classJSONNull, sweep, "the JSON null", jsonGen(func(t *rapid.T) *jnode { return jNull(t) }))
	l.addJSON(classJSONBool, sweep, "a JSON boolean", jsonGen(func(t *rapid.T) *jnode { return jBool(t) }))
	l.addJSON(classJSONNumber, sweep, "a JSON integer", jsonGen(func(t *rapid.T) *jnode { return jInt(t) }))
	l.addJSON(classJSONNumber, sweep, "a JSON number with a fraction or an exponent", jsonGen(func(t *rapid.T) *jnode { return jFloat(t) }))
	l.addJSON(classJSONString, sweep, "a JSON string with \\u escapes", jsonGen(func(t *rapid.T) *jnode { return jString(t, true) }))
	l.addJSON(classJSONString, sweep, "a JSON string of multi-byte characters", jsonGen(func(t *rapid.T) *jnode { return jString(t, false) }))
	l.addJSON(classJSONArray, sweep, "a JSON array", jsonGen(func(t *rapid.T) *jnode { return jArray(t, 1, false) }))
	l.addJSON(classJSONObject, sweep, "a JSON object", jsonGen(func(t *rapid.T) *jnode { return jObject(t, 1, false) }))
	l.addJSON(classJSONNested, sweep, "nested JSON", jsonGen(func(t *rapid.T) *jnode { return jObject(t, 5, false) }))
	for _, target := range []struct{ lo, hi int }{{4 << 10, 16 << 10}, {64 << 10, 256 << 10}, {1<<20 + 1, 1<<20 + 16<<10}} {
		if target.hi > room {
			break
		}
		n := target.lo + l.rng.IntN(target.hi-target.lo)
		l.addJSON(classJSONLarge, sweep, fmt.Sprintf("a JSON array of about %s", countBytes(n)), func(s uint64) *jnode { return largeJSON(s, n) })
	}
}

// bigIntegers: integers beyond 2^53, exact in Python and Go
// (json.Number), rounded by JSON.parse; RFC 8259 leaves their precision
// to the implementation, so they are echo.json-integers', a SHOULD. The
// nested value first: a runtime that rounds is shown it shrunk to the
// number it rounded.
func (l *caseList) bigIntegers() {
	const ints = idJSONIntegers
	l.addJSON(classBigInt, ints, "nested JSON holding integers beyond 2^53", jsonGen(func(t *rapid.T) *jnode { return jObject(t, 4, true) }))
	l.addJSON(classBigInt, ints, "a JSON integer beyond 2^53, up to 41 digits", jsonGen(func(t *rapid.T) *jnode { return jBigInt(t) }))
	l.addJSON(classBigInt, ints, "the JSON integer 2^53+1", func(uint64) *jnode { return &jnode{raw: "9007199254740993"} })
}

// sizeWords says a size: "700.0 KiB", "128 KiB", "37 bytes".
func sizeWords(n int) string {
	if n < 1<<10 {
		return countBytes(n)
	}
	return size(int64(n))
}

// powerWords names a size by its power of two: "64 KiB+1", "2^7−1".
func powerWords(n int) string {
	for _, d := range []int{0, 1, -1} {
		p := n - d
		if p > 0 && p&(p-1) == 0 {
			s := powerName(p)
			switch d {
			case 1:
				s += "+1"
			case -1:
				s += "−1"
			}
			return s
		}
	}
	return countBytes(n)
}

func powerName(p int) string {
	switch {
	case p >= 1<<20:
		return fmt.Sprintf("%d MiB", p>>20)
	case p >= 1<<10:
		return fmt.Sprintf("%d KiB", p>>10)
	}
	return fmt.Sprintf("2^%d", bitsLen(p)-1)
}

func bitsLen(p int) int {
	n := 0
	for ; p > 0; p >>= 1 {
		n++
	}
	return n
}

// countBytes says a byte count with thousands separators: "65,537 bytes".
func countBytes(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return thousands(n) + " bytes"
}

// sweepTimeout is how long a sweep call may take.
func sweepTimeout(n int) time.Duration {
	if n > 64<<10 {
		return largeTimeout
	}
	return callTimeout
}

// The sweep's checks.
const (
	idSweep        = "echo.sweep"
	idJSONIntegers = "echo.json-integers"
)

var echoSweep = &Check{ID: idSweep, Level: MUST, phase: phaseCalls, Needs: []string{"echo"},
	Description: "every payload of the sweep comes back as sent: empty, single bytes, sizes around each power of two up to {maxmsg}, UTF-8 text, binary, JSON of every type from a few bytes to over 1 MiB (drawn from the run's seed)",
	Hint: "The message names the payload class and size that failed, shrunk to a small one that still fails, and the seed: `oe-rt conform --seed N --run echo.sweep` replays the run's payloads exactly, and the reproduce line sends the shrunk one.\n" +
		"Bytes at one size only: a buffer or frame limit (a fixed-size read, a copy into a buffer of the wrong length). Text: a payload decoded as text and re-encoded (returned as a JSON string, a newline added, NULs cut). JSON of one size: a stream read once, a truncated buffer. Python: bytes in, bytes out, no .decode(). Node: a Buffer in, the same Buffer out, no toString().",
	run: checkSweep}

var echoJSONIntegers = &Check{ID: idJSONIntegers, Level: SHOULD, phase: phaseCalls, Needs: []string{"echo"},
	Description: "integers beyond 2^53 in a JSON payload come back exact, not rounded to the nearest binary64",
	Hint: "Decode JSON so that integers keep their digits: Python's json and Go's json.Decoder with UseNumber (the Go template's function.Event) do; JavaScript's JSON.parse rounds every number to a binary64, so 9007199254740993 comes back as 9007199254740992.\n" +
		"Node: parse payloads holding integers beyond Number.MAX_SAFE_INTEGER into BigInt and write BigInt back as its digits (the Node template's runtime does), or use a lossless parser (lossless-json, json-bigint). RFC 8259 allows a parser to round: hence a SHOULD.",
	run: checkSweep}

// checkSweep sends the sweep's cases that the check owns, in order; the
// first that does not come back as sent is shrunk and reported. The next
// payload is generated while a call is in flight.
func checkSweep(c *checkCtx) Outcome {
	seed := c.seed()
	room := sweepRoom(c.cfg().maxMessageSize())
	classes := map[string]bool{}
	sent, total, over := 0, 0, 0
	type made struct {
		k *sweepCase
		p []byte
	}
	next := make(chan made, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(next)
		for _, k := range sweepCases(seed, c.cfg().maxMessageSize()) {
			if k.owner != c.check.ID {
				continue
			}
			select {
			case next <- made{k, k.payload()}:
			case <-done:
				return
			}
		}
	}()
	for g := range next {
		k, p := g.k, g.p
		if len(p) > room { // a small limit: the case would be over it
			over++
			continue
		}
		m := &client.Message{FunctionName: c.fn("echo"), Payload: p}
		res, err := c.call(m, sweepTimeout(len(p)))
		if err != nil {
			return c.failed(err, fmt.Sprintf("the echo of %s (case %d of the sweep, seed %d)", k.name, k.n, seed)).with(c.repro(m))
		}
		if _, words := echoVerdict(p, res.Payload); words != "" {
			return sweepFailure(c, k, seed, p, words)
		}
		sent++
		total += len(p)
		classes[k.class] = true
	}
	note := ""
	if over > 0 {
		note = fmt.Sprintf("; %d over the %s message limit not sent", over, size(int64(c.cfg().maxMessageSize())))
	}
	if c.check.ID == idJSONIntegers {
		return pass("%d JSON payloads holding integers beyond 2^53 came back exact (seed %d)%s", sent, seed, note)
	}
	return pass("%d payloads of %d classes, %s in all, came back as sent (seed %d)%s", sent, len(classes), size(int64(total)), seed, note)
}

// sweepFailure shrinks a case that did not come back as sent and says what
// failed: the case, what came back, and the smallest payload found that
// fails too, which the reproduce line sends.
func sweepFailure(c *checkCtx, k *sweepCase, seed uint64, p []byte, words string) Outcome {
	s := newShrinker(func(q []byte) (string, string) {
		res, err := c.call(&client.Message{FunctionName: c.fn("echo"), Payload: q}, sweepTimeout(len(q)))
		switch {
		case err == nil:
			_, w := echoVerdict(q, res.Payload)
			return w, ""
		case err.kind == kindAnswered:
			return "", "" // another failure: not this one, smaller
		}
		return "", err.describe()
	})
	var min []byte
	if k.tree != nil {
		min = s.json(k.tree(k.seed)).encode()
	} else {
		fill := byte(0x00)
		if k.text {
			fill = 'a'
		}
		min = s.bytes(p, fill)
	}
	msg := fmt.Sprintf("%s, %s (case %d of the sweep, seed %d), did not come back as sent: %s", k.name, countBytes(len(p)), k.n, seed, words)
	m := &client.Message{FunctionName: c.fn("echo"), Payload: p}
	if !bytes.Equal(min, p) && bytes.Equal(min, s.last) {
		msg += fmt.Sprintf("; shrunk from %s to %s in %d calls, which fails too: %s", sizeWords(len(p)), payloadWords(min, k.tree != nil), s.calls, s.lastWord)
		m.Payload = min
	} else if s.stopped == "" && s.calls > 0 {
		msg += fmt.Sprintf("; no smaller payload failed (%d tried)", s.calls)
	}
	if s.stopped != "" {
		msg += "; shrinking stopped: " + s.stopped
	}
	msg += fmt.Sprintf("; replay with --seed %d", seed)
	return fail("%s", msg).with(c.repro(m))
}

// newSeed picks a run's seed at random: never 0, which means "pick one",
// and below 2^53, so that a JSON report read by any JSON library (a
// JavaScript one too) gives it back exact.
func newSeed() uint64 {
	var b [8]byte
	for {
		_, _ = crand.Read(b[:])
		if s := binary.LittleEndian.Uint64(b[:]) & maxSafe; s != 0 {
			return s
		}
	}
}
