package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewList(t *testing.T) {
	code, out, errOut := runMain("new", "--list")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "LANGUAGE")
	assert.Regexp(t, `(?m)^go\s+google\.golang\.org/grpc v\d+\.\d+\.\d+, google\.golang\.org/protobuf v`, out)

	code, _, errOut = runMain("new", "--list", "x")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut, "--list takes no NAME")
}

func TestNewUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"new"}, "missing NAME"},
		{[]string{"new", "a", "b", "--lang", "go"}, "one NAME only"},
		{[]string{"new", "rt"}, "missing --lang"},
		{[]string{"new", "My_RT", "--lang", "go"}, `invalid name "My_RT"`},
		{[]string{"new", "../rt", "--lang", "go"}, "not a path"},
		{[]string{"new", "rt", "--lang", "cobol"}, `unknown language "cobol"`},
		{[]string{"new", "rt", "--lang", "go", "--module", "a b"}, "invalid module path"},
		{[]string{"new", "rt", "--lang", "go", "--bogus"}, "unknown flag"},
	} {
		code, _, errOut := runMain(append(tc.args, "--dir", filepath.Join(dir, "rt"))...)
		assert.Equal(t, ExitUsage, code, "%v: %s", tc.args, errOut)
		assert.Contains(t, errOut, tc.want, "%v", tc.args)
		assert.NoDirExists(t, filepath.Join(dir, "rt"))
	}
}

func TestNewGeneratesAndPrintsNextSteps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my rt")
	code, out, errOut := runMain("new", "rt", "--lang", "go", "--dir", dir)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "Created "+dir+" (go runtime rt)")
	assert.Contains(t, out, "Next steps:\n  cd '"+dir+"'\n")
	assert.Regexp(t, `make build\s+# build bin/rt`, out)
	assert.Contains(t, out, "make conform")
	assert.FileExists(t, filepath.Join(dir, "main.go"))

	// The directory is now not empty: refused (exit 1) unless --force.
	code, _, errOut = runMain("new", "rt", "--lang", "go", "--dir", dir)
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, errOut, "is not empty")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("changed"), 0o644))
	code, _, errOut = runMain("new", "rt", "--lang", "go", "--dir", dir, "--force")
	require.Equal(t, ExitOK, code, errOut)
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "module example.com/rt")
}

func TestNewDryRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rt")
	code, out, errOut := runMain("new", "rt", "--lang", "go", "--dir", dir, "--dry-run")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "Would create "+dir)
	assert.Regexp(t, `-rw-r--r--\s+\d+\s+etc/openedge/service\.yml`, out)
	assert.Contains(t, out, "Nothing was written (--dry-run).")
	assert.NoDirExists(t, dir)
}

// Every flag of oe-rt new is in the flags table of docs/new.md, and the
// table names no flag that oe-rt new does not have.
func TestNewDocsNameEveryFlag(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", "new.md"))
	require.NoError(t, err)
	doc := string(b)
	start := strings.Index(doc, "## Flags")
	require.GreaterOrEqual(t, start, 0, "docs/new.md has a ## Flags section")
	table := doc[start:]
	if end := strings.Index(table[1:], "\n## "); end >= 0 {
		table = table[:end+1]
	}
	flags := map[string]bool{}
	newNewCmd(&env{}, nil).Flags().VisitAll(func(f *pflag.Flag) {
		flags[f.Name] = true
		assert.Contains(t, table, "`--"+f.Name+"`", "docs/new.md documents --%s", f.Name)
		if f.Shorthand != "" {
			assert.Contains(t, table, "`-"+f.Shorthand+"`, `--"+f.Name+"`", "docs/new.md gives -%s", f.Shorthand)
		}
	})
	for _, m := range regexp.MustCompile("`--([a-z-]+)`").FindAllStringSubmatch(table, -1) {
		assert.True(t, flags[m[1]], "docs/new.md names --%s, which oe-rt new does not have", m[1])
	}
}
