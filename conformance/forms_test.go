package conformance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

// formsStrict is the fake "forms-strict": a runtime that reads durations
// only as Go strings, as oe-rt's Python and Node templates once did: it
// refuses a configuration whose server.timeout is an integer of
// nanoseconds (exit status 2), and serves otherwise.
func formsStrict() int {
	path := configArg()
	if path == "" {
		path = "etc/openedge/service.yml"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0 // no configuration: nothing to refuse
	}
	if m := regexp.MustCompile(`(?m)^\s*timeout:\s*(\d+)\s*$`).FindSubmatch(b); m != nil {
		fmt.Fprintf(os.Stderr, "%s: server.timeout: duration %q: want a number with a unit such as 30s\n", path, m[1])
		return 2
	}
	return 0
}

// writeConfig writes a service.yml into a new directory and returns its
// path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "service.yml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// A runtime that refuses the forms Baetyl's runtimes read fails
// config.baetyl-forms with its own words, and leaves nothing running; the
// main instance, given the same configuration in Go's forms, passes.
func TestBaetylFormsRefused(t *testing.T) {
	file := writeConfig(t, "server:\n  timeout: 2s\n  message:\n    length:\n      max: 4m\n")
	rep := run(t, "forms-strict", func(c *conformance.Config) {
		c.Command = append(c.Command, "-c", file)
		c.Run = []string{"start.listen", "config.baetyl-forms"}
	})
	assert.Equal(t, conformance.Pass, result(t, rep, "start.listen").Status)
	r := result(t, rep, "config.baetyl-forms")
	assert.Equal(t, conformance.Warn, r.Status, r.Message)
	assert.Contains(t, r.Message, "given -c "+file+" rewritten into Baetyl's forms (server.timeout: 2s → 2000000000, server.message.length.max: 4m → 4194304")
	assert.Contains(t, r.Message, "did not start")
	var out string
	for _, l := range r.Output {
		out += l.Text + "\n"
	}
	assert.Contains(t, out, `server.timeout: duration "2000000000": want a number with a unit`)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Contains(t, string(b), "timeout: 2s", "the user's file is left alone")
}

// oe-rt serve reads Baetyl's forms: given its configuration with --config,
// the instance with the rewritten copy starts, answers and stops.
func TestBaetylFormsServe(t *testing.T) {
	dir := t.TempDir()
	file := writeConfig(t, "server:\n  timeout: 2s\n")
	rep := run(t, "serve", func(c *conformance.Config) {
		c.Dir, c.ConfigFile = dir, file
		c.Run = []string{"config.baetyl-forms"}
	})
	r := result(t, rep, "config.baetyl-forms")
	assert.Equal(t, conformance.Pass, r.Status, r.Message)
	assert.Contains(t, r.Message, "server.timeout: 2s → 2000000000, server.message.length.max: 4194304 (added)")
	assert.Contains(t, r.Message, "exited 0")

	// Without a configuration, conform gives it one with only these keys
	// where the master would mount one; serve's built-in fixtures serve.
	rep = run(t, "serve", func(c *conformance.Config) {
		c.Dir = dir
		c.Run = []string{"config.baetyl-forms"}
	})
	r = result(t, rep, "config.baetyl-forms")
	assert.Equal(t, conformance.Pass, r.Status, r.Message)
	assert.Contains(t, r.Message, "given no configuration, so conform wrote one of Baetyl's forms with only server.timeout: 1500000000, server.message.length.max: 4194304 (at etc/openedge/service.yml: ")
}
