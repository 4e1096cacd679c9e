package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// oeRT is the oe-rt binary, built once for the tests that start it as a
// child process.
var oeRT string

func TestMain(m *testing.M) {
	_ = launch.EnableSubreaper()
	dir, err := os.MkdirTemp("", "oe-rt-cli-test")
	if err != nil {
		panic(err)
	}
	oeRT = filepath.Join(dir, "oe-rt")
	if out, err := exec.Command("go", "build", "-o", oeRT, "../../cmd/oe-rt").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build oe-rt: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
