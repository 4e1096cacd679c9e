package scaffold_test

import (
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/templates"
)

// definition keeps what a .proto defines (syntax, package, service, rpc,
// message and field lines), without comments, options and spacing.
func definition(src string) string {
	keep := regexp.MustCompile(`^(syntax|package|service|rpc|message|\}|(u?int|sint|string|bytes|bool)\S* \w+ = \d+;)`)
	var out []string
	for _, l := range strings.Split(src, "\n") {
		l = strings.Join(strings.Fields(strings.SplitN(l, "//", 2)[0]), " ")
		if keep.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Every template ships copies of proto/: they must define the same
// services and messages.
func TestTemplateProtosMatch(t *testing.T) {
	for file, src := range map[string]string{"proto/function.proto": "../proto/openedge/function.proto", "proto/baetyl/function.proto": "../proto/baetyl/function.proto"} {
		want, err := os.ReadFile(src)
		require.NoError(t, err)
		for _, lang := range []string{"go", "python", "node"} {
			got, err := fs.ReadFile(templates.FS, lang+"/"+file)
			require.NoError(t, err, "%s template lacks %s", lang, file)
			assert.Equal(t, definition(string(want)), definition(string(got)), "templates/%s/%s has drifted from %s", lang, file, src)
		}
	}
}
