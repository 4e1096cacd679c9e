package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/scaffold"
)

// complete asks oe-rt for completions as a shell does, and returns the
// values offered (without descriptions) and the directive line.
func complete(t *testing.T, args ...string) (values []string, directive string) {
	t.Helper()
	code, out, stderr := runMain(append([]string{"__complete"}, args...)...)
	require.Equal(t, ExitOK, code, stderr)
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		values = append(values, v)
	}
	return values, lines[len(lines)-1]
}

// Flags that take one of a few values complete those values, never file
// names (directive 4: no file completion).
func TestCompleteFlagValues(t *testing.T) {
	langs, err := scaffold.Languages()
	require.NoError(t, err)
	var langNames []string
	for _, l := range langs {
		langNames = append(langNames, l.Name)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"conform", "--format", ""}, []string{"text", "json", "junit"}},
		{[]string{"bench", "--format", ""}, []string{"text", "json"}},
		{[]string{"call", "--format", ""}, []string{"raw", "json"}},
		{[]string{"conform", "--profile", ""}, []string{"openedge", "baetyl"}},
		{[]string{"bench", "--profile", ""}, []string{"openedge", "baetyl"}},
		{[]string{"call", "--profile", "b"}, []string{"openedge", "baetyl"}}, // the shell filters by prefix
		{[]string{"new", "--lang", ""}, langNames},
		{[]string{"serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"serve", "--log-format", ""}, []string{"text", "json"}},
		{[]string{"bench", "--function", ""}, []string{"echo", "context", "none", "fail", "sleep"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, directive := complete(t, tc.args...)
			assert.ElementsMatch(t, tc.want, got)
			assert.Equal(t, ":4", directive, "no file names")
		})
	}
}

// --run and --skip complete check IDs from the catalog and prefix.* groups,
// after the commas already typed.
func TestCompleteCheckIDs(t *testing.T) {
	for _, flag := range []string{"--run", "--skip"} {
		got, directive := complete(t, "conform", flag, "")
		for _, c := range conformance.Catalog() {
			assert.Contains(t, got, c.ID)
			group, _, _ := strings.Cut(c.ID, ".")
			assert.Contains(t, got, group+".*")
		}
		assert.Equal(t, ":6", directive, "no file names, no space after a value (a comma may follow)")

		got, _ = complete(t, "conform", flag, "echo.json,sta")
		require.NotEmpty(t, got)
		for _, v := range got {
			assert.True(t, strings.HasPrefix(v, "echo.json,start."), v)
		}
	}
}

// Completion descriptions are the flags' usages as plain text: no
// backquotes (which --help uses to name a flag's value).
func TestCompleteDescriptionsHaveNoBackquotes(t *testing.T) {
	for _, c := range []string{"serve", "call", "conform", "bench", "new", "version"} {
		code, out, _ := runMain("__complete", c, "--")
		require.Equal(t, ExitOK, code)
		assert.Contains(t, out, "--help\t")
		assert.NotContains(t, out, "`", "oe-rt %s", c)
	}
	// --help still names the values.
	_, out, _ := runMain("call", "--help")
	assert.Contains(t, out, "--cacert file")
}
