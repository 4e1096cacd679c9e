package conformance

// The resource checks judge the whole run: the peaks of every instance's
// process tree, and whether the runtime held under enforced limits.

var resourcesMemory = &Check{ID: "resources.memory", Level: SHOULD, phase: phaseEnd,
	Description: "peak RSS of the runtime's process tree during the suite is at most {memory}",
	Hint: "Node: Node alone takes about 40 MiB; --max-old-space-size and --max-semi-space-size bound the heap.\n" +
		"Python grpcio: import less at start (modules stay resident).\n" +
		"grpc-go: GOMEMLIMIT; per-call buffers of the message limit multiply by the concurrent calls.",
	run: checkMemory}

func checkMemory(c *checkCtx) Outcome {
	u := c.r.usage()
	if u.Samples == 0 {
		return notRun("no /proc to measure memory")
	}
	lim := c.cfg().MemoryLimit
	if u.PeakRSS > lim {
		return fail("peak RSS %s exceeds %s", mib(u.PeakRSS), mib(lim))
	}
	return pass("peak RSS %s (limit %s)", mib(u.PeakRSS), mib(lim))
}

var resourcesThreads = &Check{ID: "resources.threads", Level: SHOULD, phase: phaseEnd,
	Description: "peak thread count of the runtime's process tree is at most {threads}",
	Hint:        "Bound the thread pools: Python grpcio ThreadPoolExecutor(max_workers=N) (None means CPUs + 4); Node UV_THREADPOOL_SIZE and --v8-pool-size; grpc-go GOMAXPROCS (blocking system calls and cgo add threads).",
	run:         checkThreads}

func checkThreads(c *checkCtx) Outcome {
	u := c.r.usage()
	if u.Samples == 0 {
		return notRun("no /proc to count threads")
	}
	if lim := c.cfg().ThreadLimit; u.PeakThreads > lim {
		return fail("peak %d threads exceeds %d", u.PeakThreads, lim)
	}
	return pass("peak %d threads (limit %d)", u.PeakThreads, c.cfg().ThreadLimit)
}

// resourcesLimits is opt-in: it runs with --limit-memory/--limit-threads,
// and reports whether the limits could be enforced; the other checks then
// run under them.
var resourcesLimits = &Check{ID: "resources.limits", Level: SHOULD, phase: phaseEnd, OptIn: true,
	Enabled:     func(cfg *Config) bool { return cfg.CgroupLimits },
	Description: "the suite passes with the memory and thread limits ({memory}, {threads} threads) enforced by a cgroup (only with --limit-memory/--limit-threads)",
	Hint:        "Under memory.max and pids.max the runtime was killed or could not start a thread: see resources.memory and resources.threads for each stack's knobs.",
	run:         checkLimits}

func checkLimits(c *checkCtx) Outcome {
	if c.r.cgroupErr != nil {
		return notRun("cannot enforce limits here: %v", c.r.cgroupErr)
	}
	if c.r.cgroup == nil {
		return notRun("no cgroup limits in force: pass --limit-memory and --limit-threads")
	}
	if e := c.inst.ending(); e != nil {
		return fail("the runtime ended under the limits (%s): memory.max %s, pids.max %d", e.exit, mib(c.cfg().MemoryLimit), c.cfg().ThreadLimit)
	}
	return pass("ran the suite in a cgroup with memory.max %s and pids.max %d", mib(c.cfg().MemoryLimit), c.cfg().ThreadLimit)
}
