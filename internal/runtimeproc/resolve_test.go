package runtimeproc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	top := t.TempDir()
	for _, f := range []string{"proj/bin/rt", "proj/both/rt", "both/rt"} {
		p := filepath.Join(top, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(top)
	for _, tc := range []struct{ path, dir, want string }{
		{"./bin/rt", "proj", filepath.Join(top, "proj/bin/rt")},                       // under --dir, where it runs
		{"bin/rt", "proj", filepath.Join(top, "proj/bin/rt")},                         // the same without ./
		{"proj/bin/rt", "proj", filepath.Join(top, "proj/bin/rt")},                    // not under --dir: the current directory
		{"./both/rt", "proj", filepath.Join(top, "proj/both/rt")},                     // in both places: --dir's
		{"./both/rt", filepath.Join(top, "proj"), filepath.Join(top, "proj/both/rt")}, // an absolute --dir
		{"./proj/bin/rt", "", filepath.Join(top, "proj/bin/rt")},                      // no --dir: the current directory
		{"./nope/rt", "", filepath.Join(top, "nope/rt")},                              // no --dir: made absolute, launch names the fault
		{"rt", "proj", "rt"},           // a name: PATH's
		{"/bin/sh", "proj", "/bin/sh"}, // absolute: as given
		{"../" + filepath.Base(top) + "/both/rt", "", filepath.Join(top, "both/rt")},
	} {
		got, err := Resolve(tc.path, tc.dir)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q", tc.path, tc.dir, got, err, tc.want)
		}
	}
	// Found in neither place: the error names both.
	_, err := Resolve("./nope/rt", "proj")
	if err == nil {
		t.Fatal("a missing program resolved")
	}
	for _, want := range []string{"runtime ./nope/rt: no such file", filepath.Join(top, "proj/nope/rt"), filepath.Join(top, "nope/rt")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	// A --dir that does not exist is one of the places tried.
	_, err = Resolve("./bin/rt", "no-such-dir")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(top, "no-such-dir/bin/rt")) {
		t.Errorf("--dir no-such-dir: %v", err)
	}
}
