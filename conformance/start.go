package conformance

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// The start checks judge the first instance: how it came up.

var startListen = &Check{ID: "start.listen", Level: MUST, phase: phaseStart,
	Description: "accepts gRPC connections on the address given in the environment within the start timeout",
	Hint: "Read the address from the environment (BAETYL_SERVICE_INSTANCE_ADDRESS, OPENEDGE_SERVICE_INSTANCE_ADDRESS, OPENEDGE_SERVICE_ADDRESS) before server.address, and listen before any slow work.\n" +
		"grpc-go: net.Listen(\"tcp\", addr), then go s.Serve(lis); exit non-zero when Listen fails.\n" +
		"Python grpcio: server.add_insecure_port(addr), then server.start(); check that the port was bound.\n" +
		"Node @grpc/grpc-js: server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), cb) and check the callback's error.",
	run: checkStartListen}

func checkStartListen(c *checkCtx) Outcome {
	if err := c.inst.readyErr; err != nil {
		return fail("%v", err)
	}
	return pass("accepted a connection on %s %s after exec", c.inst.addr, c.inst.readyIn.Round(time.Millisecond))
}

var startTime = &Check{ID: "start.time", Level: SHOULD, phase: phaseStart,
	Description: "accepts its first connection within 1 s of exec, not counting what the machine took (calibrated)",
	Hint: "Listen first; do slow work (importing function modules, connecting to backends) after, or on the first call of each function.\n" +
		"Python grpcio: heavy imports at module level run before the server listens. Node @grpc/grpc-js: bindAsync before requiring large modules. grpc-go: keep init() cheap.",
	run: checkStartTime}

func checkStartTime(c *checkCtx) Outcome {
	const line = time.Second
	took := c.inst.readyIn
	m := machine{wait: waitBetween(sched{}, c.inst.readySched, took)}
	wait := 250 * time.Millisecond // to show its figure beside the runtime's
	if took > line {
		wait = referenceTimeout(c.cfg()) // the verdict needs it
	}
	if ref, why := c.r.reference(wait); ref != nil {
		m.ref = ref.readyIn
		m.refWords = fmt.Sprintf("the reference started in %s on this machine at the same moment", dur(ref.readyIn))
	} else {
		m.noRef = why
	}
	ok, tail := m.judge(took, line)
	o := pass("accepted its first connection %s after exec%s", dur(took), tail)
	if !ok {
		o = fail("accepted its first connection %s after exec%s: the function manager starts instances on demand, while a message waits: aim for under 1 s", dur(took), tail)
	}
	o.figures = m.figures(took, line, m.ref)
	return o
}

var startScope = &Check{ID: "start.scope", Level: SHOULD, phase: phaseStart,
	Description: "listens on the given address only: no other listening TCP socket, no wildcard bind",
	Hint: "Listen on the address string you were given, as it is: not \"0.0.0.0:\" + port or \"[::]:\" + port, and open no other port (a debug or metrics server) unless configured.\n" +
		"grpc-go: net.Listen(\"tcp\", addr). Python grpcio: server.add_insecure_port(addr). Node @grpc/grpc-js: server.bindAsync(addr, ...).",
	run: checkStartScope}

func checkStartScope(c *checkCtx) Outcome {
	if c.inst.ending() != nil {
		return notRun("instance #%d %s before its sockets could be read (see run.alive)", c.inst.n, c.inst.endWords())
	}
	var pids []int
	for _, p := range launch.Tree(c.inst.proc.Pid) {
		pids = append(pids, p.Pid)
	}
	addrs, err := launch.Listeners(pids)
	if err != nil {
		return harnessError("cannot read the listening sockets: %v", err)
	}
	var wrong []string
	for _, a := range addrs {
		if a != c.inst.addr {
			wrong = append(wrong, a)
		}
	}
	if len(wrong) > 0 {
		host, _, _ := net.SplitHostPort(wrong[0])
		hint := ""
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			hint = " (a wildcard bind: listen on the address given, not on every interface)"
		}
		return fail("listens on %s besides the given %s%s", strings.Join(wrong, ", "), c.inst.addr, hint)
	}
	return pass("listens on %s only", c.inst.addr)
}

var runAlive = &Check{ID: "run.alive", Level: MUST, phase: phaseEnd,
	Description: "no instance exits or stops before it is asked to",
	Hint: "Find why it ended in the output shown and the check it points to.\n" +
		"grpc-go: a panic in a handler goroutine kills the process: recover and answer codes.Internal.\n" +
		"Python: sys.exit()/os._exit() from a handler or a library. Node: an uncaught exception or unhandled rejection ends the process (Node 15+).\n" +
		"Killed by SIGKILL with no reason from conform: the kernel's OOM killer (see resources.memory).",
	run: checkRunAlive}

// aliveWindow is the least time run.alive watches the first instance for
// after it became ready, when the checks selected end sooner.
const aliveWindow = time.Second

func checkRunAlive(c *checkCtx) Outcome {
	first := c.r.first
	if wait := aliveWindow - time.Since(first.proc.Started.Add(first.readyIn)); wait > 0 && first.alive() {
		select {
		case <-time.After(wait):
		case <-first.watchEnd: // it ended, and the end is recorded
		case <-c.ctx.Done():
		}
	}
	c.r.mu.Lock()
	all := append([]*instance(nil), c.r.instances...)
	c.r.mu.Unlock()
	var ended []string
	for _, inst := range all {
		e := inst.ending()
		if e == nil || !e.byItself {
			continue
		}
		see := ""
		for _, rec := range e.inFlight {
			if !strings.Contains(rec.owner, " ") { // a check's ID, not a scenario
				see = " (see " + rec.owner + ")"
				break
			}
		}
		ended = append(ended, fmt.Sprintf("instance #%d (%s) %s, %s after it started%s",
			inst.n, inst.role, inst.endWords(), e.at.Sub(inst.proc.Started).Round(time.Millisecond), see))
	}
	if len(ended) > 0 {
		return fail("%s", strings.Join(ended, "; "))
	}
	return pass("no instance ended by itself (%d started; the first watched for %s)", len(all), time.Since(first.proc.Started).Round(time.Millisecond))
}
