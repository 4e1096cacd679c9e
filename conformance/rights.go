package conformance

import (
	"fmt"
	"strings"
	"time"
)

// The rights checks: what an instance the function manager starts may not
// do. The master gives it the API's address but not the service token, so
// the API refuses every request it makes.

var rightsMasterAPI = &Check{ID: "rights.master-api", Level: SHOULD, phase: phaseEnd,
	Description: "makes no request to the master API, or keeps serving when the master refuses it (an instance has no token)",
	Hint: "Do not need the master API to serve: an instance gets its address but not the service token, so every request is refused (401).\n" +
		"Read what you need from the environment and the configuration instead; treat a refusal as \"not available\" and go on serving.",
	run: checkMasterAPI}

// maxListed bounds how many requests a message lists.
const maxListed = 5

func checkMasterAPI(c *checkCtx) Outcome {
	// Give a runtime that asks the API at start-up and gives up a moment
	// to do so.
	c.watchFirst()
	reqs, more, addrs := c.masterRequests()
	if len(reqs) == 0 {
		return pass("made no request to the master API (%s)", addrs)
	}
	var broke []string
	judged := map[int]bool{}
	for _, q := range reqs {
		if q.inst == 0 || judged[q.inst] {
			continue
		}
		inst := c.instanceN(q.inst)
		if inst == nil {
			continue
		}
		if e := inst.ending(); e != nil && e.byItself && !e.at.Before(q.at) {
			judged[q.inst] = true
			broke = append(broke, fmt.Sprintf("instance #%d %s, %s after the master refused %s %s",
				inst.n, inst.endWords(), e.at.Sub(q.at).Round(time.Millisecond), q.method, q.path))
		} else if h := inst.hungWords(); h != "" {
			judged[q.inst] = true
			broke = append(broke, fmt.Sprintf("instance #%d stopped answering (%s) after the master refused %s %s", inst.n, h, q.method, q.path))
		}
	}
	listed := listRequests(reqs, more)
	if len(broke) > 0 {
		return fail("the master refused the runtime's %s (%s), and %s: an instance the function manager starts gets the API's address but no token, so the master refuses whatever it asks; serve without it",
			plural(len(reqs)+more, "request", "requests"), listed, strings.Join(broke, "; "))
	}
	return pass("the master refused the runtime's %s (%s) and it kept serving", plural(len(reqs)+more, "request", "requests"), listed)
}

// listRequests lists requests in one line, at most maxListed of them, and
// says how many more there were.
func listRequests(reqs []apiRequest, more int) string {
	var parts []string
	for i, q := range reqs {
		if i == maxListed {
			more += len(reqs) - maxListed
			break
		}
		parts = append(parts, q.String())
	}
	if more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, "; ")
}

// instanceN returns instance n, or nil.
func (r *runner) instanceN(n int) *instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, inst := range r.instances {
		if inst.n == n {
			return inst
		}
	}
	return nil
}
