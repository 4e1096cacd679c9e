package shellquote

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "./bin/rt": "./bin/rt", "a=b": "a=b", "": "''", "my rt": "'my rt'",
		"it's": `'it'\''s'`, "~/src": "'~/src'", "$HOME": "'$HOME'", "a;b": "'a;b'", "*": "'*'", "=x": "'=x'",
	} {
		assert.Equal(t, want, Quote(in), "%q", in)
	}
}

// What Join writes, a real shell reads back as the same words.
func TestJoinRoundTripsThroughSh(t *testing.T) {
	words := []string{"a b", "it's", "", "$(touch /tmp/oe-rt-pwned)", "`x`", "\\", "\"q\"", "*", "~", "tab\there", "new\nline", "ünï", "-c", "x=y"}
	out, err := exec.Command("sh", "-c", "for w in "+Join(words)+`; do printf '%s\0' "$w"; done`).Output()
	require.NoError(t, err)
	var got []string
	start := 0
	for i, b := range out {
		if b == 0 {
			got = append(got, string(out[start:i]))
			start = i + 1
		}
	}
	assert.Equal(t, words, got)
}
