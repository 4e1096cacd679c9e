package scaffold_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/scaffold"
)

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "myruntime", "my-runtime", "rt2", "a-1-b", strings.Repeat("a", 63)} {
		assert.NoError(t, scaffold.ValidateName(ok), ok)
	}
	for name, want := range map[string]string{
		"":                      "needs a name",
		"MyRuntime":             "lowercase",
		"my_runtime":            "lowercase letters, digits and dashes",
		"my.runtime":            "lowercase letters, digits and dashes",
		"my runtime":            "lowercase letters, digits and dashes",
		"1runtime":              "start with a lowercase letter",
		"-runtime":              "start with a lowercase letter",
		"runtime-":              "must not end with a dash",
		"../evil":               "not a path",
		"a/b":                   "not a path",
		`a\b`:                   "not a path",
		"..":                    "not a path",
		".":                     "start with a lowercase letter",
		"rt\x00":                "lowercase letters, digits and dashes",
		"émile":                 "start with a lowercase letter",
		strings.Repeat("a", 64): "longer than 63",
	} {
		err := scaffold.ValidateName(name)
		if assert.Error(t, err, "%q", name) {
			assert.Contains(t, err.Error(), want, "%q", name)
		}
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		opts scaffold.Options
		want string
	}{
		{scaffold.Options{Name: "../x", Lang: "go"}, "not a path"},
		{scaffold.Options{Name: "x", Lang: "cobol"}, `unknown language "cobol": choose one of go`},
		{scaffold.Options{Name: "x"}, "no language given"},
		{scaffold.Options{Name: "x", Lang: "go", Module: "not a module"}, "invalid module path"},
	} {
		tc.opts.Dir = filepath.Join(dir, "out")
		_, err := scaffold.Generate(context.Background(), tc.opts)
		require.Error(t, err, "%+v", tc.opts)
		assert.Contains(t, err.Error(), tc.want)
		var oe *scaffold.OptionError
		assert.True(t, errors.As(err, &oe), "%v is an OptionError", err)
		assert.NoDirExists(t, tc.opts.Dir)
	}
}

func TestGenerateDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	res, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: "go"})
	require.NoError(t, err)
	assert.Equal(t, "rt", res.Dir)
	assert.Equal(t, "example.com/rt", res.Data.Module)
	assert.Equal(t, "latest", res.Data.OERTVersion)
	b, err := os.ReadFile("rt/go.mod")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(b), "module example.com/rt\n"))
	assert.NotEmpty(t, res.NextSteps)
	// Nothing besides the project is left in the parent directory.
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

func TestGenerateRefusesANonEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(keep, []byte("mine"), 0o644))
	_, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: "go", Dir: dir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is not empty")
	assert.Contains(t, err.Error(), "--force")
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "nothing was written")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: "go", Dir: file})
	require.ErrorContains(t, err, "is not a directory")
}

func TestGenerateIntoAnEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// The current directory itself, empty: it must stay the current directory.
	res, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: "go", Dir: "."})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, "go.mod"))
	assert.FileExists(t, "main.go")
	entries, _ := os.ReadDir(filepath.Dir(dir))
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), "oe-rt-new"), "temporary directory %s left behind", e.Name())
	}
	assert.Len(t, res.Files, countFiles(t, dir))
}

func TestGenerateForce(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "functions"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "functions", "mine.go"), []byte("package functions\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("old"), 0o644))
	res, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: "go", Dir: dir, Force: true})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "module example.com/rt", "a generated file replaces the old one")
	assert.FileExists(t, filepath.Join(dir, "notes.txt"), "other files are kept")
	assert.FileExists(t, filepath.Join(dir, "functions", "mine.go"), "directories are merged")
	assert.FileExists(t, filepath.Join(dir, "functions", "conformance.go"))
	assert.Equal(t, len(res.Files)+2, countFiles(t, dir))
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "parent", "rt")
	res, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: "go", Dir: dir, DryRun: true})
	require.NoError(t, err)
	assert.True(t, res.DryRun)
	assert.NoDirExists(t, filepath.Dir(dir))
	var paths []string
	for _, f := range res.Files {
		paths = append(paths, f.Path)
		assert.Positive(t, f.Size, f.Path)
	}
	assert.Contains(t, paths, "go.mod")
	assert.Contains(t, paths, "etc/openedge/service.yml")
	assert.NotContains(t, paths, "template.yml")
	for _, p := range paths {
		assert.False(t, strings.HasSuffix(p, ".tmpl"), p)
	}
	// A dry run refuses what a real run would.
	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	_, err = scaffold.Generate(context.Background(), scaffold.Options{Name: "rt", Lang: "go", Dir: full, DryRun: true})
	assert.ErrorContains(t, err, "not empty")
}

// testTemplates is a small template tree: an executable named after the
// runtime, a rendered file and a copied one.
func testTemplates(extra fstest.MapFS) fstest.MapFS {
	fsys := fstest.MapFS{
		"sh/template.yml": {Data: []byte(`description: a shell runtime
stack: {file: requirements.txt, packages: [grpcio]}
executables: ["bin/{{.Name}}"]
next: [{doc: "run {{.Name}}", run: "./bin/{{.Name}}"}]
`)},
		"sh/requirements.txt":     {Data: []byte("grpcio>=1.51 # Debian bookworm\nPyYAML >= 6.0\n")},
		"sh/bin/{{.Name}}.tmpl":   {Data: []byte("#!/bin/sh\necho {{.Name}}\n")},
		"sh/README.md.tmpl":       {Data: []byte("# {{.Name}}\n")},
		"sh/raw.yml":              {Data: []byte("x: ${{ github.sha }}\n")},
		"sh/__pycache__/x.pyc":    {Data: []byte{0}},
		"sh/node_modules/a/b.js":  {Data: []byte("junk")},
		"templates.go":            {Data: []byte("package templates\n")},
		"notalanguage/readme.txt": {Data: []byte("no manifest here")},
	}
	for k, v := range extra {
		fsys[k] = v
	}
	return fsys
}

func TestTemplateRules(t *testing.T) {
	langs, err := scaffold.LanguagesIn(testTemplates(nil))
	require.NoError(t, err)
	require.Len(t, langs, 1)
	assert.Equal(t, "sh", langs[0].Name)
	assert.Equal(t, []scaffold.Package{{Name: "grpcio", Version: ">=1.51"}}, langs[0].Stack)

	dir := filepath.Join(t.TempDir(), "x")
	res, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "hello", Lang: "sh", Dir: dir, Templates: testTemplates(nil)})
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(dir, "bin", "hello"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), st.Mode().Perm(), "listed as executable")
	st, err = os.Stat(filepath.Join(dir, "README.md"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), st.Mode().Perm())
	b, _ := os.ReadFile(filepath.Join(dir, "raw.yml"))
	assert.Equal(t, "x: ${{ github.sha }}\n", string(b), "files without .tmpl are copied as they are")
	b, _ = os.ReadFile(filepath.Join(dir, "bin", "hello"))
	assert.Equal(t, "#!/bin/sh\necho hello\n", string(b))
	assert.NoDirExists(t, filepath.Join(dir, "__pycache__"))
	assert.NoDirExists(t, filepath.Join(dir, "node_modules"))
	assert.Equal(t, 4, countFiles(t, dir)) // bin/hello, README.md, raw.yml, requirements.txt
	assert.Equal(t, []scaffold.Step{{Doc: "run hello", Run: "./bin/hello"}}, res.NextSteps)
}

func TestTemplateErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		extra fstest.MapFS
		want  string
	}{
		"missing key":          {fstest.MapFS{"sh/zz.tmpl": {Data: []byte("{{.Missing}}")}}, `can't evaluate field Missing`},
		"parse error":          {fstest.MapFS{"sh/zz.tmpl": {Data: []byte("{{.Name")}}, "zz.tmpl"},
		"missing executable":   {fstest.MapFS{"sh/template.yml": {Data: []byte("description: d\nexecutables: [bin/nope]\n")}}, "lists executable bin/nope"},
		"unknown manifest key": {fstest.MapFS{"sh/template.yml": {Data: []byte("description: d\nexecutable: [x]\n")}}, "field executable not found"},
		"no description":       {fstest.MapFS{"sh/template.yml": {Data: []byte("executables: []\n")}}, "has no description"},
		"stack not in file":    {fstest.MapFS{"sh/template.yml": {Data: []byte("description: d\nstack: {file: requirements.txt, packages: [grpcio-tools]}\n")}}, "does not require grpcio-tools"},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "new", "x")
			_, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "hello", Lang: "sh", Dir: dir, Templates: testTemplates(tc.extra)})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			entries, _ := os.ReadDir(parent)
			assert.Empty(t, entries, "a failed render leaves nothing behind")
		})
	}
}

// TestWriteFailureLeavesNothing fails while files are being written (a
// file name longer than the file system allows): neither the target nor
// the temporary directory nor created parents remain.
func TestWriteFailureLeavesNothing(t *testing.T) {
	long := strings.Repeat("n", 300)
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "b", "x")
	_, err := scaffold.Generate(context.Background(), scaffold.Options{Name: "hello", Lang: "sh", Dir: dir,
		Templates: testTemplates(fstest.MapFS{"sh/zz/" + long: {Data: []byte("x")}})})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "write zz/")
	entries, _ := os.ReadDir(parent)
	assert.Empty(t, entries)

	// Into an existing empty directory: it stays empty.
	empty := t.TempDir()
	_, err = scaffold.Generate(context.Background(), scaffold.Options{Name: "hello", Lang: "sh", Dir: empty,
		Templates: testTemplates(fstest.MapFS{"sh/zz/" + long: {Data: []byte("x")}})})
	require.Error(t, err)
	entries, _ = os.ReadDir(empty)
	assert.Empty(t, entries)
	entries, _ = os.ReadDir(filepath.Dir(empty))
	for _, e := range entries {
		assert.NotContains(t, e.Name(), "oe-rt-new")
	}
}

func TestGenerateHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join(t.TempDir(), "rt")
	_, err := scaffold.Generate(ctx, scaffold.Options{Name: "rt", Lang: "go", Dir: dir})
	require.ErrorIs(t, err, context.Canceled)
	assert.NoDirExists(t, dir)
}

func TestLanguagesReadStackVersions(t *testing.T) {
	langs, err := scaffold.Languages()
	require.NoError(t, err)
	byName := map[string]scaffold.Language{}
	for _, l := range langs {
		byName[l.Name] = l
		assert.NotEmpty(t, l.Description, l.Name)
		assert.NotEmpty(t, l.Stack, l.Name)
		for _, p := range l.Stack {
			assert.NotEmpty(t, p.Version, "%s: %s", l.Name, p.Name)
		}
	}
	goLang, ok := byName["go"]
	require.True(t, ok, "the go template is built in")
	// The versions are those of the template's go.mod.
	b, err := os.ReadFile("../templates/go/go.mod.tmpl")
	require.NoError(t, err)
	for _, p := range goLang.Stack {
		assert.Contains(t, string(b), "\t"+p.Name+" "+p.Version+"\n")
	}
}

func TestParseDependencyFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"js/template.yml":     {Data: []byte("description: d\nstack: {file: package.json, packages: ['@grpc/grpc-js', '@grpc/proto-loader']}\n")},
		"js/package.json":     {Data: []byte(`{"name": "x", "dependencies": {"@grpc/grpc-js": "^1.14.0", "@grpc/proto-loader": "0.8.0"}}`)},
		"py/template.yml":     {Data: []byte("description: d\nstack: {file: requirements.txt, packages: [grpcio, protobuf, PyYAML]}\n")},
		"py/requirements.txt": {Data: []byte("# comment\n-r other.txt\ngrpcio >= 1.51.1, < 2 ; python_version >= '3.8'\nprotobuf[extra]==4.21.12\nPyYAML\n")},
		"gm/template.yml":     {Data: []byte("description: d\nstack: {file: go.mod.tmpl, packages: [a.com/x, b.com/y]}\n")},
		"gm/go.mod.tmpl":      {Data: []byte("module {{.Module}}\n\nrequire a.com/x v1.2.3\n\nrequire (\n\tb.com/y v0.1.0 // indirect\n)\n")},
	}
	langs, err := scaffold.LanguagesIn(fsys)
	require.NoError(t, err)
	require.Len(t, langs, 3)
	assert.Equal(t, []scaffold.Package{{"a.com/x", "v1.2.3"}, {"b.com/y", "v0.1.0"}}, langs[0].Stack)
	assert.Equal(t, []scaffold.Package{{"@grpc/grpc-js", "^1.14.0"}, {"@grpc/proto-loader", "0.8.0"}}, langs[1].Stack)
	assert.Equal(t, []scaffold.Package{{"grpcio", ">=1.51.1,<2"}, {"protobuf", "==4.21.12"}, {"PyYAML", ""}}, langs[2].Stack)
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	}))
	return n
}
