package scaffold_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/oe-rt/oe-rt/scaffold"
)

// TestEveryTemplateKeepsTheContract checks, without the languages' tools,
// what every generated project must hold (docs/new.md, "What every project
// contains"); the e2e tests then prove it works.
func TestEveryTemplateKeepsTheContract(t *testing.T) {
	langs, err := scaffold.Languages()
	require.NoError(t, err)
	for _, l := range langs {
		t.Run(l.Name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rt")
			_, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: l.Name, Dir: dir})
			require.NoError(t, err)
			read := func(p string) string {
				t.Helper()
				b, err := os.ReadFile(filepath.Join(dir, p))
				require.NoError(t, err, "the %s template has %s", l.Name, p)
				return string(b)
			}
			for _, p := range []string{"README.md", "Dockerfile", "proto/function.proto"} {
				assert.NotEmpty(t, read(p), p)
			}
			assert.Contains(t, read("proto/function.proto"), "package openedge;")

			// Both default files: etc/openedge for OpenEdge, etc/baetyl for
			// a Baetyl master (docs/new.md). They serve the same functions.
			handlers := map[string]map[string]string{}
			for _, file := range []string{"etc/openedge/service.yml", "etc/baetyl/service.yml"} {
				var cfg struct {
					Functions []struct {
						Name, Handler string
					} `yaml:"functions"`
				}
				require.NoError(t, yaml.Unmarshal([]byte(read(file)), &cfg))
				names := map[string]string{}
				for _, f := range cfg.Functions {
					names[f.Name] = f.Handler
					assert.NotEmpty(t, f.Handler, "%s: function %s has a handler", file, f.Name)
				}
				for _, fixture := range []string{"echo", "context", "none", "fail", "sleep"} {
					assert.Contains(t, names, fixture, "%s configures the %s fixture", file, fixture)
				}
				assert.Greater(t, len(names), 5, "%s configures an example function next to the fixtures", file)
				handlers[file] = names
			}
			assert.Equal(t, handlers["etc/openedge/service.yml"], handlers["etc/baetyl/service.yml"], "etc/openedge/service.yml and etc/baetyl/service.yml configure the same functions")

			mk := read("Makefile")
			for _, target := range []string{"build", "run", "test", "conform", "docker"} {
				assert.Regexp(t, `(?m)^`+target+`:`, mk, "the Makefile has a %s target", target)
			}
			assert.Regexp(t, `(?m)^OE_RT\s*\?=\s*oe-rt\s*$`, mk, "the Makefile takes oe-rt from $(OE_RT), default oe-rt")
			assert.Regexp(t, `(?m)^conform:.*\n(\t.*\n)*\t.*\$\(OE_RT\) conform --strict`, mk, "make conform runs $(OE_RT) conform --strict")
			assert.Regexp(t, `(?m)^conform:.*\n(\t.*\n)*\t.*\$\(OE_RT\) conform --strict.* \$\(CONFORM_FLAGS\) `, mk, "make conform passes $(CONFORM_FLAGS) on")
			assert.Regexp(t, `(?m)^CONFORM_FLAGS\s*\?=`, mk, "CONFORM_FLAGS can be set from the command line or the environment")

			wfs, _ := filepath.Glob(filepath.Join(dir, ".github", "workflows", "*.yml"))
			require.NotEmpty(t, wfs, "a GitHub Actions workflow")
			var all strings.Builder
			for _, f := range wfs {
				all.WriteString(read(strings.TrimPrefix(f, dir+"/")))
			}
			assert.Regexp(t, regexp.MustCompile(`(?m)^\s+uses: oe-rt/oe-rt@\S+\n\s+with:\n(\s+\S+: .*\n)*\s+strict: true\n`), all.String(), "the workflow gates the project with the oe-rt action, strict")
		})
	}
}

// TestConformanceDocFixturesMatchTheTemplates keeps the Python and Node
// fixture examples of docs/conformance.md ("Fixtures") in step with the
// templates' fixture files: the same function names, which are the
// handlers the templates configure.
func TestConformanceDocFixturesMatchTheTemplates(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "conformance.md"))
	require.NoError(t, err)
	section := string(doc)
	start := strings.Index(section, "\n## Fixtures")
	require.GreaterOrEqual(t, start, 0, "docs/conformance.md has a ## Fixtures section")
	section = section[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	block := func(lang string) string {
		m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindStringSubmatch(section)
		require.NotNil(t, m, "the Fixtures section has a %s example", lang)
		return m[1]
	}
	names := func(re, text string) []string {
		var out []string
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(text, -1) {
			out = append(out, m[1])
		}
		return out
	}
	for _, tt := range []struct{ lang, file, re string }{
		{"python", "../templates/python/functions/conformance/fixtures.py", `(?m)^def (\w+)\(`},
		{"js", "../templates/node/functions/conformance/fixtures.js", `(?m)^exports\.(\w+) =`},
	} {
		src, err := os.ReadFile(tt.file)
		require.NoError(t, err)
		want := names(tt.re, string(src))
		assert.ElementsMatch(t, []string{"echo", "context", "none", "fail", "sleep"}, want, "%s defines the five fixtures", tt.file)
		assert.Equal(t, want, names(tt.re, block(tt.lang)), "docs/conformance.md's %s fixtures are those of %s", tt.lang, tt.file)
	}
}

// The three templates' workflows have one shape: the same steps with the
// same inputs, but for the language's own setup step (named "Set up
// <language>") and the runtime's path.
func TestWorkflowsHaveTheSameShape(t *testing.T) {
	langs, err := scaffold.Languages()
	require.NoError(t, err)
	type step struct {
		Name string            `yaml:"name"`
		Uses string            `yaml:"uses"`
		Run  string            `yaml:"run"`
		If   string            `yaml:"if"`
		With map[string]string `yaml:"with"`
	}
	shapes := map[string][]step{}
	for _, l := range langs {
		dir := filepath.Join(t.TempDir(), "rt")
		_, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: l.Name, Dir: dir, OERTVersion: "v9.9.9"})
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dir, ".github", "workflows", "conform.yml"))
		require.NoError(t, err)
		var wf struct {
			Jobs map[string]struct {
				Steps []step `yaml:"steps"`
			} `yaml:"jobs"`
		}
		require.NoError(t, yaml.Unmarshal(b, &wf))
		require.Len(t, wf.Jobs, 1)
		var shape []step
		for _, s := range wf.Jobs["conform"].Steps {
			if strings.HasPrefix(s.Name, "Set up ") && !strings.HasPrefix(s.Name, "Set up Go") {
				continue // the language's own
			}
			if strings.HasPrefix(s.Uses, "oe-rt/oe-rt@") {
				assert.Equal(t, "oe-rt/oe-rt@v9.9.9", s.Uses, "%s: the action at the version of oe-rt that generated the project", l.Name)
				assert.Regexp(t, `^\./bin/\w+$`, s.With["runtime"])
				delete(s.With, "runtime")
			}
			shape = append(shape, s)
		}
		shapes[l.Name] = shape
	}
	for name, shape := range shapes {
		assert.Equal(t, shapes["go"], shape, "the %s workflow has the go workflow's shape", name)
	}
	require.NotEmpty(t, shapes["go"])
}
