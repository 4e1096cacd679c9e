package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBaetylForms(t *testing.T) {
	for _, tc := range []struct {
		name, in, out string
		changes       []string
	}{
		{"strings become integers", "# keep me\nname: x\nserver:\n  timeout: 5s\n  message:\n    length:\n      max: 4.5m\nfunctions:\n  - {name: a, handler: b}\n",
			"# keep me\nname: x\nserver:\n  timeout: 5000000000\n  message:\n    length:\n      max: 4718592\nfunctions:\n  - {name: a, handler: b}\n",
			[]string{"server.timeout: 5s → 5000000000", "server.message.length.max: 4.5m → 4718592"}},
		{"missing keys are added", "name: x\n", "name: x\nserver:\n  timeout: 2000000000\n  message:\n    length:\n      max: 1024\n",
			[]string{"server.timeout: 2000000000 (added)", "server.message.length.max: 1024 (added)"}},
		{"only comments", "# oe-rt-fake-config\n", "", []string{"server.timeout: 2000000000 (added)", "server.message.length.max: 1024 (added)"}},
		{"empty", "", "server:\n  timeout: 2000000000\n  message:\n    length:\n      max: 1024\n", []string{"server.timeout: 2000000000 (added)", "server.message.length.max: 1024 (added)"}},
		{"already Baetyl's", "server: {timeout: 3, message: {length: {max: 7}}}\n", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changes, err := baetylForms([]byte(tc.in), 2*time.Second, 1024)
			require.NoError(t, err)
			assert.Equal(t, tc.changes, changes)
			if tc.out != "" {
				assert.Equal(t, tc.out, string(out))
			}
		})
	}
	for in, want := range map[string]string{
		"server: [1]\n":             "server is not a mapping",
		"- a\n":                     "not a YAML mapping",
		"server: {timeout: soon}\n": "server.timeout",
		"server: {message: {length: {max: lots}}}\n": "server.message.length.max",
		"server: {timeout: [1]}\n":                   "server.timeout is not a value",
		"a: [\n":                                     "not YAML",
	} {
		_, _, err := baetylForms([]byte(in), time.Second, 1)
		assert.ErrorContains(t, err, want, in)
	}
}
