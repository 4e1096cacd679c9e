package convention

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/internal/size"
)

// TestValueFormsDocumented keeps the table of docs/convention.md and
// ValueForms the same, row for row.
func TestValueFormsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/convention.md")
	require.NoError(t, err)
	row := regexp.MustCompile("^\\| `([a-z.]+)` \\| `([^`]+)` \\| ([^|]+) \\| ([^|]+) \\|$")
	var got []ValueForm
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil || (m[1] != "server.timeout" && m[1] != "server.message.length.max") {
			continue
		}
		f := ValueForm{Key: m[1], Written: m[2], Who: strings.TrimSpace(m[4])}
		reads := strings.TrimSpace(m[3])
		if f.Duration() {
			d, err := time.ParseDuration(reads)
			require.NoError(t, err, line)
			f.Nanos = int64(d)
		} else {
			n, err := strconv.ParseInt(strings.TrimSuffix(reads, " bytes"), 10, 64)
			require.NoError(t, err, line)
			f.Bytes = n
		}
		got = append(got, f)
	}
	assert.Equal(t, ValueForms, got, "docs/convention.md's table of value forms and convention.ValueForms differ")
}

// TestValueFormsSizes: oe-rt's one size parser reads every size form as
// the table says.
func TestValueFormsSizes(t *testing.T) {
	for _, f := range ValueForms {
		if f.Duration() {
			continue
		}
		n, err := size.Parse(f.Written)
		if assert.NoError(t, err, f.Written) {
			assert.Equal(t, f.Bytes, n, f.Written)
		}
	}
}
