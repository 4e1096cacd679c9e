package conformance

// The sweep: the echo's input space, generated from the run's seed
// (Config.Seed, printed in every report), so that a run replays exactly
// with --seed. The cases are a fixed list of classes — empty, single bytes,
// sizes around every power of two up to the message limit, UTF-8 text,
// binary, JSON of every type and size, integers beyond 2^53 — whose
// contents the seed draws: bulk bytes from a PCG stream, text and JSON
// values from pgregory.net/rapid's generators (Generator.Example with the
// case's seed: rapid's deterministic draw outside a property test).
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
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	rng := rand.New(rand.NewPCG(seed, 0x6f652d7274)) // the cases' seeds and choices
	var out []*sweepCase
	add := func(class, owner, name string, text bool, gen func(uint64) []byte) {
		out = append(out, &sweepCase{n: len(out) + 1, class: class, owner: owner, name: name, seed: rng.Uint64(), gen: gen, text: text})
	}
	addJSON := func(class, owner, name string, tree func(uint64) *jnode) {
		add(class, owner, name, false, nil)
		out[len(out)-1].tree = tree
	}
	const sweep, ints = idSweep, idJSONIntegers

	add(classEmpty, sweep, "an empty payload", false, func(uint64) []byte { return []byte{} })

	// Single bytes: those that mean something to a parser, and a few the
	// seed picks.
	singles := []byte{0x00, '\n', ' ', '"', '0', '{', 'a', 0x7f, 0x80, 0xc3, 0xfe, 0xff}
	for i := 0; i < 4; i++ {
		singles = append(singles, byte(rng.UintN(256)))
	}
	for _, b := range singles {
		add(classByte, sweep, fmt.Sprintf("the single byte %#02x", b), false, func(uint64) []byte { return []byte{b} })
	}

	// Sizes around every power of two, up to the limit.
	room := sweepRoom(limit)
	for p := 1; p+1 <= room; p *= 2 {
		sizes := []int{p - 1, p, p + 1}
		if p > fullTrioMax {
			sizes = []int{sizes[rng.IntN(3)]}
		}
		for _, n := range sizes {
			if n < 1 {
				continue
			}
			fill := sizeFills[rng.IntN(len(sizeFills))]
			add(classSize, sweep, fmt.Sprintf("%s (%s) of %s", countBytes(n), powerWords(n), fill.name), fill.text,
				func(s uint64) []byte { return fill.gen(s, n) })
		}
	}
	// One size strictly inside 64 KiB–1 MiB, off every boundary.
	if room > 1<<20 {
		n := 64<<10 + 2 + rng.IntN(1<<20-64<<10-4)
		add(classSize, sweep, fmt.Sprintf("%s of binary", countBytes(n)), false, func(s uint64) []byte { return binaryBytes(s, n) })
	}

	// UTF-8 text that is not JSON.
	add(classTextASCII, sweep, "UTF-8 text, ASCII", true, textGen(textASCII))
	add(classTextMulti, sweep, "UTF-8 text with multi-byte characters", true, textGen(textMulti))
	add(classTextNewlines, sweep, "UTF-8 text with newlines", true, textGen(textNewlines))
	add(classTextNUL, sweep, "UTF-8 text with NUL bytes", true, textGen(textNUL))
	add(classBinary, sweep, "binary bytes (invalid UTF-8)", false, func(s uint64) []byte {
		return binaryBytes(s, 2+int(s%4000))
	})
	add(classBinary, sweep, "binary bytes (invalid UTF-8)", false, func(s uint64) []byte {
		return binaryBytes(s, 2+int(s%40))
	})

	// JSON of every type; numbers within ±(2^53−1), so that every JSON
	// library compares them equal.
	addJSON(classJSONNull, sweep, "the JSON null", jsonGen(func(t *rapid.T) *jnode { return jNull(t) }))
	addJSON(classJSONBool, sweep, "a JSON boolean", jsonGen(func(t *rapid.T) *jnode { return jBool(t) }))
	addJSON(classJSONNumber, sweep, "a JSON integer", jsonGen(func(t *rapid.T) *jnode { return jInt(t) }))
	addJSON(classJSONNumber, sweep, "a JSON number with a fraction or an exponent", jsonGen(func(t *rapid.T) *jnode { return jFloat(t) }))
	addJSON(classJSONString, sweep, "a JSON string with \\u escapes", jsonGen(func(t *rapid.T) *jnode { return jString(t, true) }))
	addJSON(classJSONString, sweep, "a JSON string of multi-byte characters", jsonGen(func(t *rapid.T) *jnode { return jString(t, false) }))
	addJSON(classJSONArray, sweep, "a JSON array", jsonGen(func(t *rapid.T) *jnode { return jArray(t, 1, false) }))
	addJSON(classJSONObject, sweep, "a JSON object", jsonGen(func(t *rapid.T) *jnode { return jObject(t, 1, false) }))
	addJSON(classJSONNested, sweep, "nested JSON", jsonGen(func(t *rapid.T) *jnode { return jObject(t, 5, false) }))
	for _, target := range []struct{ lo, hi int }{{4 << 10, 16 << 10}, {64 << 10, 256 << 10}, {1<<20 + 1, 1<<20 + 16<<10}} {
		if target.hi > room {
			break
		}
		n := target.lo + rng.IntN(target.hi-target.lo)
		addJSON(classJSONLarge, sweep, fmt.Sprintf("a JSON array of about %s", countBytes(n)), func(s uint64) *jnode { return largeJSON(s, n) })
	}

	// Integers beyond 2^53: exact in Python and Go (json.Number), rounded
	// by JSON.parse; RFC 8259 leaves their precision to the
	// implementation, so they are echo.json-integers', a SHOULD.
	// The nested value first: a runtime that rounds is shown it shrunk to
	// the number it rounded.
	addJSON(classBigInt, ints, "nested JSON holding integers beyond 2^53", jsonGen(func(t *rapid.T) *jnode { return jObject(t, 4, true) }))
	addJSON(classBigInt, ints, "a JSON integer beyond 2^53, up to 41 digits", jsonGen(func(t *rapid.T) *jnode { return jBigInt(t) }))
	addJSON(classBigInt, ints, "the JSON integer 2^53+1", func(uint64) *jnode { return &jnode{raw: "9007199254740993"} })
	return out
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

// sizeFills are the contents a size case is filled with.
var sizeFills = []struct {
	name string
	text bool
	gen  func(seed uint64, n int) []byte
}{
	{"binary", false, binaryBytes},
	{"0x00", false, func(_ uint64, n int) []byte { return make([]byte, n) }},
	{"ASCII text", true, func(s uint64, n int) []byte { return textOfSize(s, n, "the quick brown fox jumps over the lazy dog ") }},
	{"multi-byte UTF-8 text", true, func(s uint64, n int) []byte { return textOfSize(s, n, "héllo wörld ✓ 日本語 😀 ") }},
}

// binaryBytes is n bytes of a PCG stream, never valid UTF-8 (when n > 0):
// a byte 0xff ends them when the stream happened to be.
func binaryBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0xb1))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	b = b[:n]
	if n > 0 && utf8.Valid(b) {
		b[n-1] = 0xff
	}
	return b
}

// textOfSize is n bytes of valid UTF-8 text, not JSON: it starts with a
// letter, then repeats unit from an offset the seed picks, with ASCII
// where a character would not fit.
func textOfSize(seed uint64, n int, unit string) []byte {
	b := make([]byte, 0, n)
	b = append(b, 'x')
	u := []byte(unit)
	off := int(seed % uint64(len(u)))
	for !utf8.RuneStart(u[off]) {
		off--
	}
	for len(b) < n {
		r, size := utf8.DecodeRune(u[off:])
		if len(b)+size > n {
			b = append(b, '.')
			continue
		}
		b = utf8.AppendRune(b, r)
		off = (off + size) % len(u)
	}
	return b[:n]
}

// The kinds of generated text.
const (
	textASCII = iota
	textMulti
	textNewlines
	textNUL
)

// textGen generates UTF-8 text of a kind, 1 to ~600 bytes, that is not
// JSON (it starts with the letter x, which no JSON text does).
func textGen(kind int) func(uint64) []byte {
	g := rapid.Custom(func(t *rapid.T) string {
		var b strings.Builder
		b.WriteByte('x')
		parts := rapid.IntRange(1, 24).Draw(t, "parts")
		for i := 0; i < parts; i++ {
			b.WriteString(rapid.StringOfN(rapid.RuneFrom([]rune("abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;:!?'\"{}[]-_/\\\t")), 1, 16, -1).Draw(t, "ascii"))
			switch kind {
			case textMulti:
				b.WriteString(rapid.StringOfN(rapid.OneOf(rapid.RuneFrom([]rune("éüßñ✓€—日本語中文한국어😀🚀𝄞\u2028\u00a0\ufeff")), rapid.Rune()), 1, 8, -1).Draw(t, "multi"))
			case textNewlines:
				b.WriteString(rapid.SampledFrom([]string{"\n", "\r\n", "\n\n", "\r"}).Draw(t, "newline"))
			case textNUL:
				b.WriteString(strings.Repeat("\x00", rapid.IntRange(1, 3).Draw(t, "nuls")))
			}
		}
		return b.String()
	})
	return func(seed uint64) []byte { return []byte(g.Example(int(seed >> 1))) }
}

// A jnode is a generated JSON value, kept as a tree so that a failing one
// can be shrunk by its structure; scalars keep the text they were
// generated as (escapes, exponents, digits beyond 2^53).
type jnode struct {
	raw  string   // a scalar's text; "" for an array or object
	obj  bool     // an object (keys[i] is kids[i]'s key, as JSON text)
	keys []string // an object's keys
	kids []*jnode
	ws   string // whitespace written after each separator
}

func (j *jnode) encode() []byte {
	var b bytes.Buffer
	j.write(&b)
	return b.Bytes()
}

func (j *jnode) write(b *bytes.Buffer) {
	switch {
	case j.raw != "":
		b.WriteString(j.raw)
	case j.obj:
		b.WriteByte('{')
		for i, k := range j.kids {
			if i > 0 {
				b.WriteByte(',')
				b.WriteString(j.ws)
			}
			b.WriteString(j.keys[i])
			b.WriteByte(':')
			b.WriteString(j.ws)
			k.write(b)
		}
		b.WriteByte('}')
	default:
		b.WriteByte('[')
		for i, k := range j.kids {
			if i > 0 {
				b.WriteByte(',')
				b.WriteString(j.ws)
			}
			k.write(b)
		}
		b.WriteByte(']')
	}
}

// size is the length of the value's text.
func (j *jnode) size() int {
	if j.raw != "" {
		return len(j.raw)
	}
	n := 2
	for i, k := range j.kids {
		n += k.size()
		if i > 0 {
			n += 1 + len(j.ws)
		}
		if j.obj {
			n += len(j.keys[i]) + 1 + len(j.ws)
		}
	}
	return n
}

// jsonGen generates a JSON value.
func jsonGen(f func(*rapid.T) *jnode) func(uint64) *jnode {
	g := rapid.Custom(f)
	return func(seed uint64) *jnode { return g.Example(int(seed >> 1)) }
}

func jNull(t *rapid.T) *jnode {
	return &jnode{raw: rapid.SampledFrom([]string{"null", "null", " null", "null\n"}).Draw(t, "null")}
}

func jBool(t *rapid.T) *jnode {
	return &jnode{raw: rapid.SampledFrom([]string{"true", "false"}).Draw(t, "bool")}
}

// maxSafe is 2^53−1, the largest integer every JSON library keeps exact.
const maxSafe = 1<<53 - 1

func jInt(t *rapid.T) *jnode {
	v := rapid.OneOf(rapid.Int64Range(-maxSafe, maxSafe), rapid.SampledFrom([]int64{0, -1, maxSafe, -maxSafe, 1 << 31, 1<<32 + 1})).Draw(t, "int")
	return &jnode{raw: strconv.FormatInt(v, 10)}
}

// jFloat is a number with a fraction or an exponent and at most 15
// significant digits, so that a binary64 round trip keeps it exact.
func jFloat(t *rapid.T) *jnode {
	mant := rapid.Int64Range(-999_999_999_999_999, 999_999_999_999_999).Draw(t, "mantissa")
	exp := rapid.IntRange(-30, 30).Draw(t, "exponent")
	switch rapid.IntRange(0, 3).Draw(t, "form") {
	case 0: // 12.345
		s := strconv.FormatInt(abs64(mant), 10)
		point := rapid.IntRange(1, len(s)).Draw(t, "point")
		frac := s[point:]
		if frac == "" {
			frac = "0"
		}
		return &jnode{raw: sign(mant) + s[:point] + "." + frac}
	case 1: // 12345e-7
		return &jnode{raw: strconv.FormatInt(mant, 10) + "e" + strconv.Itoa(exp)}
	case 2: // 1.5E+3
		return &jnode{raw: sign(mant) + strconv.FormatInt(abs64(mant)%10, 10) + ".5E+" + strconv.Itoa(abs(exp))}
	}
	return &jnode{raw: rapid.SampledFrom([]string{"0.0", "-0.0", "-0", "1.0", "0.5", "1e2", "2.5e-3", "1E300", "-1e-300"}).Draw(t, "float")}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int64) string {
	if v < 0 {
		return "-"
	}
	return ""
}

// jBigInt is an integer beyond 2^53 (to about 10^40).
func jBigInt(t *rapid.T) *jnode {
	s := rapid.SampledFrom([]string{"9007199254740993", "-9007199254740993", "18446744073709551617", "12345678901234567890123"}).Draw(t, "big")
	if rapid.Bool().Draw(t, "random") {
		digits := rapid.StringOfN(rapid.RuneFrom([]rune("0123456789")), 16, 40, -1).Draw(t, "digits")
		s = "1" + digits
	}
	return &jnode{raw: s}
}

// jString is a JSON string; escapes writes some characters as \u escapes
// (surrogate pairs beyond the BMP) and short escapes.
func jString(t *rapid.T, escapes bool) *jnode {
	runes := rapid.SliceOfN(rapid.OneOf(rapid.RuneFrom([]rune("abc xyz\"\\/\n\t\x00\x1féü✓日本😀𝄞\u2028")), rapid.Rune()), 0, 24).Draw(t, "runes")
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range runes {
		esc := escapes && rapid.Bool().Draw(t, fmt.Sprint("escape ", i))
		writeJSONRune(&b, r, esc)
	}
	if escapes {
		b.WriteString(`\u00e9\ud83d\ude00`) // é and 😀, escaped: every such string has both
	}
	b.WriteByte('"')
	return &jnode{raw: b.String()}
}

// writeJSONRune writes r inside a JSON string: escaped when esc or when
// JSON requires it.
func writeJSONRune(b *strings.Builder, r rune, esc bool) {
	switch r {
	case '"':
		b.WriteString(`\"`)
		return
	case '\\':
		b.WriteString(`\\`)
		return
	case '\n':
		b.WriteString(`\n`)
		return
	case '\t':
		b.WriteString(`\t`)
		return
	case '/':
		if esc {
			b.WriteString(`\/`)
			return
		}
	}
	switch {
	case r < 0x20 || (esc && r < 0x10000):
		fmt.Fprintf(b, `\u%04x`, r)
	case esc:
		r -= 0x10000
		fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
	default:
		b.WriteRune(r)
	}
}

// jValue is any JSON value, nested at most depth levels; big puts
// integers beyond 2^53 among the numbers.
func jValue(t *rapid.T, depth int, big bool) *jnode {
	kinds := 6
	if depth <= 0 {
		kinds = 4
	}
	switch rapid.IntRange(0, kinds).Draw(t, "kind") {
	case 0:
		return jNull(t)
	case 1:
		return jBool(t)
	case 2:
		if big && rapid.Bool().Draw(t, "big") {
			return jBigInt(t)
		}
		return jInt(t)
	case 3:
		return jFloat(t)
	case 4:
		return jString(t, rapid.Bool().Draw(t, "escapes"))
	case 5:
		return jArray(t, depth-1, big)
	}
	return jObject(t, depth-1, big)
}

func jArray(t *rapid.T, depth int, big bool) *jnode {
	n := rapid.IntRange(0, 6).Draw(t, "len")
	j := &jnode{ws: jWhitespace(t)}
	for i := 0; i < n; i++ {
		j.kids = append(j.kids, jValue(t, depth, big))
	}
	if big {
		j.kids = append(j.kids, jBigInt(t))
	}
	return j
}

func jObject(t *rapid.T, depth int, big bool) *jnode {
	n := rapid.IntRange(0, 6).Draw(t, "len")
	j := &jnode{obj: true, ws: jWhitespace(t)}
	for i := 0; i < n || (big && i == n); i++ {
		// "k3:" first: keys that differ only in how they are escaped
		// would be one key twice.
		k := fmt.Sprintf(`"k%d:%s`, i, jString(t, rapid.Bool().Draw(t, "escapes")).raw[1:])
		v := jValue(t, depth, big)
		if big && i == n {
			v = jBigInt(t)
		}
		j.keys = append(j.keys, k)
		j.kids = append(j.kids, v)
	}
	return j
}

func jWhitespace(t *rapid.T) string {
	return rapid.SampledFrom([]string{"", "", " ", "\n  "}).Draw(t, "ws")
}

// largeJSON is an array of generated objects, about n bytes of text: a
// pool of values drawn from the seed, each wrapped with its index so that
// no two elements are equal.
func largeJSON(seed uint64, n int) *jnode {
	pool := rapid.Custom(func(t *rapid.T) []*jnode {
		var vs []*jnode
		for i := 0; i < 24; i++ {
			vs = append(vs, jValue(t, 3, false))
		}
		return vs
	}).Example(int(seed >> 1))
	top := &jnode{}
	for i, size := 0, 2; size < n; i++ {
		v := &jnode{obj: true, keys: []string{`"i"`, `"v"`}, kids: []*jnode{{raw: strconv.Itoa(i)}, pool[i%len(pool)]}}
		top.kids = append(top.kids, v)
		size += v.size() + 1
	}
	return top
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
