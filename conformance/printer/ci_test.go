package printer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

func TestMarkdown(t *testing.T) {
	rep := report(false)
	rep.Checks[1].Message = "came back | different <img src=x> *bold* `tick`\nsecond line"
	var b bytes.Buffer
	require.NoError(t, Markdown(&b, rep))
	out := b.String()
	assert.True(t, strings.HasPrefix(out, "## oe-rt conform: FAILED\n"), out)
	assert.Contains(t, out, "| PASS | `start.listen` | MUST | 1ms | answered |\n")
	// Every table row has the same number of cells: a runtime's | cannot
	// add one, nor its < add HTML, nor its newline end the row.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| |") {
			assert.Equal(t, 6, strings.Count(l, "|")-strings.Count(l, `\|`), "row %q", l)
		}
	}
	assert.Contains(t, out, `came back \| different \<img src=x\> \*bold\* \`+"`tick\\` second line")
	assert.Contains(t, out, "**`echo.bytes`** (MUST, **FAIL**)")
	assert.Contains(t, out, "> Pass bytes as they are.\n> Python: no .decode().\n")
	assert.NotContains(t, out, "call.concurrent`** ", "a SHOULD that did not run, not strict, is not a failure to list")
}

func TestAnnotations(t *testing.T) {
	rep := report(false)
	rep.Checks[1].Message = "came back different\n::error title=forged::x 100%\r"
	var b bytes.Buffer
	require.NoError(t, Annotations(&b, rep))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 2, "one command per check that did not pass, each on one line: %q", b.String())
	assert.Equal(t, "::error title=echo.bytes::came back different%0A::error title=forged::x 100%25\\x0d%0Ahow to fix: Pass bytes as they are.%0APython: no .decode().%0A(oe-rt conform --explain echo.bytes)", lines[0])
	assert.Equal(t, "::warning title=echo.empty::returned null", lines[1])

	b.Reset()
	strict := report(true)
	require.NoError(t, Annotations(&b, strict))
	assert.Contains(t, b.String(), "::error title=echo.empty::", "under --strict a warning fails the run")
	assert.Contains(t, b.String(), "::error title=call.concurrent::not run: no sleep fixture", "under --strict a check that did not run fails the run")

	b.Reset()
	known := report(false)
	known.Checks[1].Baseline, known.Checks[1].BaselineNote = conformance.Known, "known: echo.bytes, since then"
	require.NoError(t, Annotations(&b, known))
	assert.Contains(t, b.String(), "::warning title=echo.bytes::came back different <&>%0Aknown: echo.bytes, since then")
}
