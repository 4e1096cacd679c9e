// Command oe-rt is the tool for authors of OpenEdge and Baetyl function
// runtimes: a reference runtime (serve), a conformance suite (conform), a
// scaffold generator (new), and a client and load tester (call, bench).
// See docs/ for the manual.
package main

import (
	"os"

	"github.com/oe-rt/oe-rt/cmd/oe-rt/internal/cli"
	"github.com/oe-rt/oe-rt/internal/launch"
)

func main() {
	// The launcher's guard (and the master's stand-in on a machine
	// without /bin/sh) are this executable re-executed: they run here,
	// before anything else.
	launch.Init()
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
