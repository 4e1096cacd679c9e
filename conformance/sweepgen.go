package conformance

// The sweep's generators: the contents of its cases, each a function of
// the case's seed alone (sweep.go lists the cases). Bulk bytes come from a
// PCG stream; text and JSON values from pgregory.net/rapid's generators,
// drawn with Generator.Example(seed).

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode/utf8"

	"pgregory.net/rapid"
)

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
