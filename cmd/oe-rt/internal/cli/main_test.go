package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// repoRoot is the repository's top, from this package's directory.
const repoRoot = "../../../.."

// oeRT is the oe-rt binary, built once for the tests that start it as a
// child process.
var oeRT string

func TestMain(m *testing.M) {
	launch.Init()
	// conform calibrates against its own executable's hidden reference
	// command: under test, that executable is this test binary.
	if len(os.Args) > 2 && os.Args[1] == "conform" && os.Args[2] == referenceCmd {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	_ = launch.EnableSubreaper()
	dir, err := os.MkdirTemp("", "oe-rt-cli-test")
	if err != nil {
		panic(err)
	}
	oeRT = filepath.Join(dir, "oe-rt")
	if out, err := exec.Command("go", "build", "-o", oeRT, "../..").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build oe-rt: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
