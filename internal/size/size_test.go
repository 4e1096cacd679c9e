package size

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "512": 512, "4194304": 4194304, "512b": 512, "1k": 1024, "1K": 1024, "1kb": 1024, "1KiB": 1024,
		"64k": 64 << 10, "4m": 4 << 20, "4MB": 4 << 20, "4MiB": 4 << 20, "1g": 1 << 30, "1G": 1 << 30,
		"1.5m": 3 << 19, " 2m ": 2 << 20, "1 m": 1 << 20,
	} {
		got, err := Parse(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

// The values a hostile or careless user gives: each is refused with a
// message that names the value, never read as something else.
func TestParseRejects(t *testing.T) {
	for _, in := range []string{"", "-1", "-1k", "+5", "1q", "k", "m", "NaN", "Inf", "1kk", "1mbb", "1xb", "one", "0x10", "100000000000000p", "1e30"} {
		_, err := Parse(in)
		if assert.Error(t, err, "%q", in) {
			assert.Contains(t, err.Error(), "size ", in)
		}
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 100: "100", 1024: "1k", 1536: "1536", 4 << 20: "4m", 6<<20 + 1024: "6145k", 1 << 30: "1g"} {
		assert.Equal(t, want, Format(n))
		if back, err := Parse(Format(n)); assert.NoError(t, err) {
			assert.Equal(t, n, back, "Format(%d) reads back", n)
		}
	}
}
