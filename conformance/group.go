package conformance

import (
	"fmt"
	"strings"
	"time"
)

// run.process-group: Baetyl's master starts every instance in its own
// process group (baetyl 1.0.0, master/engine/native/process.go: os.StartProcess with
// no Setpgid), so a signal an instance sends to its group reaches the
// master, the hub, the function manager and every other service. conform
// starts each instance in the group of a stand-in for the master (a
// process of conform's that only waits: launch.Spec.MasterGroup) and
// judges every signal that reached one.

var runProcessGroup = &Check{ID: "run.process-group", Level: MUST, phase: phaseEnd, Requires: []Requirement{shutdownScenario},
	Description: "sends no signal to its process group, which under the master is the master's own",
	Hint: "Signal your children by their PIDs, never the group: in a start script, `exec` the runtime (it then gets SIGTERM itself), or trap TERM and pass it on with kill -TERM \"$child\", not kill -TERM 0.\n" +
		"Go: syscall.Kill(pid, sig), not syscall.Kill(0, sig) or -pgid. Python: os.kill(child.pid, sig), not os.killpg. Node: child.kill(), not process.kill(-process.pid).",
	run: checkProcessGroup}

func checkProcessGroup(c *checkCtx) Outcome {
	if c.contained() {
		return pass("in container mode each instance is alone in a PID namespace of its own: a signal to its process group reaches no master (natively, conform judges every signal that reached its stand-in)")
	}
	insts := c.instances()
	var names []string
	var where []string
	seen := map[string]bool{}
	for _, inst := range insts {
		for _, s := range inst.proc.GroupSignals() {
			name := signalName(s.Signal)
			if name == "" {
				name = fmt.Sprintf("signal %d", int(s.Signal))
			}
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
			where = append(where, fmt.Sprintf("%s from instance #%d (%s) %s after it started", name, inst.n, inst.role, s.At.Sub(inst.proc.StartTime()).Round(time.Millisecond)))
		}
	}
	if len(names) == 0 {
		return pass("no signal reached the master's stand-in in the process group of any of the %d instances (conform signals an instance's PID only, as the master does)", len(insts))
	}
	return fail("%s reached the process group: under the master that is the master itself, the hub, the function manager and every service (%s)",
		strings.Join(names, " and "), strings.Join(where, "; "))
}
