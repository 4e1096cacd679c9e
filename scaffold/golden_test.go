package scaffold_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/tools/txtar"

	"github.com/oe-rt/oe-rt/scaffold"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from what Generate writes")

// goldenCases are the generated trees kept in testdata/<lang>.txtar: one
// per language, with a module path other than the default for Go so that
// the substitution shows.
func goldenCase(lang string) scaffold.Options {
	o := scaffold.Options{Name: "myruntime", Lang: lang, OERTVersion: "v0.1.0"}
	if lang == "go" {
		o.Module = "github.com/someone/myruntime"
	}
	return o
}

// TestGolden generates each language's project and compares the files
// written to disk, with their modes, to testdata/<lang>.txtar. Run
// `go test ./scaffold -run TestGolden -update` after changing a template,
// and review the diff.
func TestGolden(t *testing.T) {
	langs, err := scaffold.Languages()
	require.NoError(t, err)
	require.NotEmpty(t, langs)
	for _, l := range langs {
		t.Run(l.Name, func(t *testing.T) {
			opts := goldenCase(l.Name)
			opts.Dir = filepath.Join(t.TempDir(), "myruntime")
			res, err := scaffold.Generate(context.Background(), opts)
			require.NoError(t, err)
			got := archive(t, opts, res.Dir)
			file := filepath.Join("testdata", l.Name+".txtar")
			if *update {
				require.NoError(t, os.WriteFile(file, txtar.Format(got), 0o644))
				return
			}
			b, err := os.ReadFile(file)
			require.NoError(t, err, "no golden file for %s: run go test ./scaffold -run TestGolden -update", l.Name)
			want := txtar.Parse(b)
			require.Equal(t, string(want.Comment), string(got.Comment), "file list or modes changed: run with -update and review")
			require.Len(t, got.Files, len(want.Files))
			for i := range want.Files {
				require.Equal(t, want.Files[i].Name, got.Files[i].Name)
				require.Equal(t, string(want.Files[i].Data), string(got.Files[i].Data), "%s differs: run with -update and review", want.Files[i].Name)
			}
		})
	}
}

// archive reads a generated tree back from disk: the comment lists each
// file's mode, the files follow in path order.
func archive(t *testing.T, o scaffold.Options, dir string) *txtar.Archive {
	t.Helper()
	var comment bytes.Buffer
	fmt.Fprintf(&comment, "oe-rt new %s --lang %s", o.Name, o.Lang)
	if o.Module != "" {
		fmt.Fprintf(&comment, " --module %s", o.Module)
	}
	fmt.Fprintf(&comment, " (oe-rt %s)\n\n", o.OERTVersion)
	a := &txtar.Archive{}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		paths = append(paths, filepath.ToSlash(rel))
		return nil
	})
	require.NoError(t, err)
	sort.Strings(paths)
	for _, p := range paths {
		st, err := os.Stat(filepath.Join(dir, p))
		require.NoError(t, err)
		fmt.Fprintf(&comment, "%s %s\n", strconv.FormatUint(uint64(st.Mode().Perm()), 8), p)
		b, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err)
		if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
			t.Errorf("%s does not end with a newline (txtar would add one)", p)
		}
		if strings.Contains(string(b), "\n-- ") {
			t.Errorf("%s holds a line starting with '-- ', which txtar cannot keep", p)
		}
		a.Files = append(a.Files, txtar.File{Name: p, Data: b})
	}
	a.Comment = comment.Bytes()
	return a
}
