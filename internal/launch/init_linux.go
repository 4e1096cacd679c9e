package launch

import (
	"errors"
	"os"
	"sync/atomic"
)

// initDone says Init ran in this process: Start refuses to launch before
// it, since the guard and the stand-in are this executable re-executed,
// and an executable that does not call Init would run its own main (or its
// tests) in their place.
var initDone atomic.Bool

// Init runs the launcher's helper processes: when this process is one of
// them (the guard, the master's stand-in: this executable re-executed with
// a marker in its environment), Init runs it and exits; otherwise it
// returns at once. Call it first thing in main, and in TestMain of every
// test binary that starts processes through this package (runc keeps its
// re-executed init in package main the same way).
func Init() {
	switch {
	case os.Getenv(guardEnv) == guardMagic:
		os.Exit(runGuard(os.Stdin))
	case os.Getenv(standInEnv) == standInMagic:
		os.Exit(runStandIn())
	}
	initDone.Store(true)
}

// errNoInit is Start's error when Init was not called.
var errNoInit = errors.New("launch: Init was not called first in this program's main (or TestMain): the launcher's guard could not run")
