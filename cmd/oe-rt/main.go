// Command oe-rt is the tool for authors of OpenEdge and Baetyl function
// runtimes: a reference runtime (serve), a conformance suite (conform), a
// scaffold generator (new), and a client and load tester (call, bench).
// See docs/ for the manual.
package main

import (
	"os"

	"github.com/oe-rt/oe-rt/cmd/oe-rt/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
