package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// An answer and an exit that come together: conform may record the exit
// before the goroutine that read the answer records it. The answered call
// is not "in flight at the end" (the text report would list every instance
// of a PASSED run for it), and the words say it answered.
func TestAnsweredCallIsNotLostAtTheEnd(t *testing.T) {
	t0 := time.Now()
	drain := &callRecord{owner: "shutdown.drain", function: "sleep", start: t0}
	crash := &callRecord{owner: "fail.status", function: "fail", start: t0}
	inst := &instance{}
	inst.end = &instanceEnd{at: t0.Add(time.Second), exit: "exit status 0", asked: "SIGTERM", inFlight: []*callRecord{drain}}
	// Recorded after the exit, as the goroutine that read it ran late.
	drain.end, drain.kind = t0.Add(1013*time.Millisecond), kindOK

	assert.Empty(t, inst.end.unanswered())
	assert.Equal(t, "was ended by conform (SIGTERM): exit status 0 with no call in flight, as it answered shutdown.drain's call to sleep", inst.endWords())

	// A call the process did not answer stays in flight.
	crash.end, crash.kind = t0.Add(1013*time.Millisecond), kindExited
	inst.end = &instanceEnd{at: t0.Add(time.Second), exit: "exit status 3", byItself: true, inFlight: []*callRecord{crash}}
	assert.Equal(t, []*callRecord{crash}, inst.end.unanswered())
	assert.Equal(t, "exited by itself (exit status 3) while answering fail.status's call to fail", inst.endWords())
}

// start.address-aliases when the budget ran out before every alias
// instance was started: the untried variables have no instance, and the
// check is not run, saying why (it once read the missing instance).
func TestAliasesCutByTheBudget(t *testing.T) {
	done := make(chan struct{})
	close(done)
	first := &instance{n: 4, readyIn: 300 * time.Millisecond}
	res := &aliasResult{budget: true, tries: make([]aliasTry, len(addressAliases))}
	res.tries[0] = aliasTry{alias: addressAliases[0], inst: first}
	r := &runner{scenarios: map[Requirement]*scenarioRun{aliasScenario: {done: done, res: res}}}
	o := checkAddressAliases(&checkCtx{r: r, check: startAddressAliases})
	assert.Equal(t, Skip, o.Status)
	assert.Equal(t, "not run: conform's time budget ran out before every address variable was tried", o.Message)

	res.budget, res.interrupted = false, true
	o = checkAddressAliases(&checkCtx{r: r, check: startAddressAliases})
	assert.Equal(t, Skip, o.Status)
	assert.Equal(t, "not run: interrupted", o.Message)
}
