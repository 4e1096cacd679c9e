package conformance_test

// The sweep: runtimes wrong only at some sizes or in some contents fail
// echo.sweep, which names the case and shrinks it; integers beyond 2^53
// are echo.json-integers'. (Not parallel: each run asserts that no
// process of the test outlived it.)

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/conformance/printer"
)

func sweepRun(t *testing.T, mode string, seed uint64, ids ...string) *conformance.Report {
	t.Helper()
	return run(t, mode, func(c *conformance.Config) {
		c.Run = ids
		c.Seed = seed
		c.ArtifactDir = t.TempDir()
	})
}

// TestSweepShrinksADroppedByte: a runtime that drops a byte from payloads
// of 100–900 KiB fails echo.sweep, which names the first size that failed
// and shrinks it to the smallest, 100 KiB; the reproduce line sends that
// payload and the failure shows again. The same seed replays the run.
func TestSweepShrinksADroppedByte(t *testing.T) {
	rep := sweepRun(t, "drop-mid", 42, "echo.sweep")
	assert.Equal(t, conformance.Failed, rep.Verdict)
	assert.Equal(t, uint64(42), rep.Seed)
	r := result(t, rep, "echo.sweep")
	require.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Regexp(t, `^131,07[123] bytes \(128 KiB(\+1|−1)?\) of [\w -]+, 131,07[123] bytes \(case \d+ of the sweep, seed 42\), did not come back as sent: `, r.Message)
	assert.Regexp(t, `; shrunk from 128(\.0)? KiB to 102,400 bytes of 0x(00|61 \("a"\)) in \d+ calls, which fails too: sent 102400 bytes .*, got 102399 bytes`, r.Message)
	assert.True(t, strings.HasSuffix(r.Message, "; replay with --seed 42"), r.Message)
	var text bytes.Buffer
	require.NoError(t, printer.Text{}.Write(&text, rep))
	assert.Contains(t, text.String(), "seed:     42 (--seed 42 sends the same sweep again)")

	// The reproduce line carries the shrunk payload, from a file.
	path := regexp.MustCompile(`'?@([^' ]+)'?$`).FindStringSubmatch(r.Repro)
	require.Len(t, path, 2, r.Repro)
	p, err := os.ReadFile(path[1])
	require.NoError(t, err)
	require.Len(t, p, 100<<10)
	assert.True(t, bytes.Count(p, p[:1]) == len(p), "one repeated byte")
	got := reproduce(t, rep, r)
	assert.Len(t, got, 100<<10-1, "the byte is dropped again")

	again := sweepRun(t, "drop-mid", 42, "echo.sweep")
	assert.Equal(t, r.Message, result(t, again, "echo.sweep").Message, "the same seed, the same run")
}

// TestSweepShrinksTruncatedJSON: a runtime that cuts JSON over 4 KiB fails
// echo.sweep on a JSON case, shrunk to a value just over 4 KiB.
func TestSweepShrinksTruncatedJSON(t *testing.T) {
	rep := sweepRun(t, "json-4k", 7, "echo.sweep")
	r := result(t, rep, "echo.sweep")
	require.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Regexp(t, `^(a JSON array of about [\d,]+ bytes|nested JSON), [\d,]+ bytes \(case \d+ of the sweep, seed 7\), did not come back as sent: sent the JSON .*, got .* \(4096 bytes\): not an equal JSON value`, r.Message)
	m := regexp.MustCompile(`; shrunk from [\d.]+ KiB to the JSON .* \(([\d,]+) bytes\) in \d+ calls, which fails too`).FindStringSubmatch(r.Message)
	require.Len(t, m, 2, r.Message)
	n := strings.ReplaceAll(m[1], ",", "")
	assert.Regexp(t, `^(4[01]\d\d|4[2-9]\d\d|[5-7]\d\d\d)$`, n, "just over 4 KiB (%s bytes)", m[1])
}

// TestSweepFindsQuotedText: a runtime that returns text as a JSON string
// ("hello world" for hello world) fails echo.sweep on a text case, shrunk
// to a few bytes of "a".
func TestSweepFindsQuotedText(t *testing.T) {
	rep := sweepRun(t, "quote-text", 3, "echo.sweep")
	r := result(t, rep, "echo.sweep")
	require.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Regexp(t, `^([\d,]+ bytes \(.*\) of (ASCII|multi-byte UTF-8) text|UTF-8 text, ASCII|UTF-8 text with [\w -]+), [\d,]+ bytes \(case \d+ of the sweep, seed 3\), did not come back as sent: sent .*, got [\d]+ bytes "\\"x`, r.Message)
	assert.Contains(t, r.Message, `shrunk from`)
	assert.Regexp(t, `to 5 bytes of 0x61 \("a"\) in \d+ calls, which fails too: sent 5 bytes "aaaaa", got 7 bytes "\\"aaaaa\\""`, r.Message)
	assert.Contains(t, r.Repro, " echo aaaaa", "the payload on the line")
}

// TestSweepBigIntegers: a runtime that decodes JSON numbers as binary64
// (JSON.parse) passes echo.sweep, whose numbers fit, and warns in
// echo.json-integers, naming the nested value it rounded, shrunk to the
// number, and what came back.
func TestSweepBigIntegers(t *testing.T) {
	rep := sweepRun(t, "round-numbers", 11, "echo.sweep", "echo.json-integers")
	assert.Equal(t, conformance.Passed, rep.Verdict, "a SHOULD only")
	sw := result(t, rep, "echo.sweep")
	assert.Equal(t, conformance.Pass, sw.Status, sw.Message)
	r := result(t, rep, "echo.json-integers")
	require.Equal(t, conformance.Warn, r.Status, r.Message)
	assert.Regexp(t, `^nested JSON holding integers beyond 2\^53, [\d,]+ bytes \(case \d+ of the sweep, seed 11\), did not come back as sent: sent the JSON .*: not an equal JSON value \(numbers compared exactly\)`, r.Message)
	m := regexp.MustCompile(`; shrunk from [\d,]+ bytes to the JSON "(-?\d{16,})" \(\d+ bytes\) in \d+ calls, which fails too: sent the JSON "-?\d+" \(\d+ bytes\), got "(-?[\d.e+]+)"`).FindStringSubmatch(r.Message)
	require.Len(t, m, 3, r.Message)
	assert.NotEqual(t, m[1], m[2], "rounded")
	assert.True(t, strings.HasSuffix(r.Repro, " echo "+m[1]) || strings.HasSuffix(r.Repro, " echo -- "+m[1]) || strings.HasSuffix(r.Repro, " echo '"+m[1]+"'"), r.Repro)
}
