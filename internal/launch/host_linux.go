package launch

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// host is what the launcher shares across every launch of this process:
// the cgroup hierarchies it found, the forking thread, the registry of what
// it started and the guard. Init makes the one value; every launch holds
// it and passes it down. Nothing else of the package changes after Init.
type host struct {
	cgroups *cgroupHost
	forker  *forker
	reg     registry
	guard   guardConn
	cookies atomic.Int64 // the sequence in the launch markers
	kids    selfKids     // this process's children, for the samplers' ticks
	// standInShell runs the master's stand-in, or "" for this executable
	// (findStandInShell).
	standInShell string
}

// theHost is the value Init made (nil before Init): the one package-level
// variable of the launcher, set once, so that Start, a package function,
// finds what Init prepared.
var theHost atomic.Pointer[host]

// Init runs the launcher's helper processes: when this process is one of
// them (the guard, the master's stand-in: this executable re-executed with
// a marker in its environment), Init runs it and exits; otherwise it makes
// the launcher's shared state and returns. Call it first thing in main,
// and in TestMain of every test binary that starts processes through this
// package (runc keeps its re-executed init in package main the same way).
// A second call changes nothing.
func Init() {
	switch {
	case os.Getenv(guardEnv) == guardMagic:
		os.Exit(runGuard(os.Stdin))
	case os.Getenv(standInEnv) == standInMagic:
		os.Exit(runStandIn())
	}
	cg := newCgroupHost()
	h := &host{
		cgroups:      cg,
		forker:       newForker(cg),
		reg:          registry{direct: map[int]bool{}, live: map[*Process]bool{}},
		standInShell: findStandInShell(),
	}
	theHost.CompareAndSwap(nil, h)
}

// errNoInit is Start's error when Init was not called.
var errNoInit = errors.New("launch: Init was not called first in this program's main (or TestMain): the launcher's guard could not run")

// current returns the value Init made, or errNoInit.
func current() (*host, error) {
	if h := theHost.Load(); h != nil {
		return h, nil
	}
	return nil, errNoInit
}

// newCookie returns a token unique to this launch.
func (h *host) newCookie() string {
	return fmt.Sprintf("%d.%d.%d", os.Getpid(), time.Now().UnixNano(), h.cookies.Add(1))
}

// registry is what this process started and has not reaped, and the
// launches not yet cleaned up.
type registry struct {
	sync.Mutex
	// direct are the PIDs of children the launcher started (programs,
	// stand-ins and the guard): never taken for an orphan, never reaped
	// but by their own waiter. The lock is held across a fork, so that no
	// one looks for orphans while a child is born unregistered.
	direct map[int]bool
	live   map[*Process]bool
}

// has reports whether the launcher started pid itself.
func (r *registry) has(pid int) bool {
	r.Lock()
	defer r.Unlock()
	return r.direct[pid]
}

// forget drops pid, reaped, from the children the launcher started.
func (r *registry) forget(pid int) {
	r.Lock()
	defer r.Unlock()
	delete(r.direct, pid)
}
