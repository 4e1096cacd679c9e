package conformance

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/oe-rt/oe-rt/client"
)

// One cause, said once: when several checks fail because the runtime
// answered their calls with the same error — the same status and message,
// as a function that raises the same exception for every call does — the
// report says so in one line, and the hints of all but the first point to
// the first.

// SameCause is a group of checks that failed with the same error.
type SameCause struct {
	// Error is the runtime's answer: "UNKNOWN: TypeError: …".
	Error string `json:"error"`
	// Checks failed or warned with it, in catalog order; the first one's
	// hint is the one to read.
	Checks []string `json:"checks"`
}

// String is the report's line: "8 checks failed with the same error:
// UNKNOWN: TypeError: … — see echo.json".
func (s SameCause) String() string {
	return fmt.Sprintf("%d checks failed with the same error: %s — see %s", len(s.Checks), s.Error, s.Checks[0])
}

// sameCauses groups the failed and warned checks by the error the runtime
// answered their calls with, and points the hints of each group's later
// checks to its first. Called with the results in catalog order.
func (r *runner) sameCauses(results []Result, instances []*instance) []SameCause {
	// What each check's calls were answered with, when not OK: the first
	// such answer of each check.
	answered := map[string]string{}
	for _, inst := range instances {
		inst.answeredErrors(answered)
	}
	var out []SameCause
	index := map[string]int{}
	for _, res := range results {
		if res.Status != Fail && res.Status != Warn {
			continue
		}
		e := answered[res.ID]
		if e == "" || !strings.Contains(res.Message, e) {
			continue // not failed by that answer
		}
		i, ok := index[e]
		if !ok {
			i = len(out)
			index[e] = i
			out = append(out, SameCause{Error: e})
		}
		out[i].Checks = append(out[i].Checks, res.ID)
	}
	var groups []SameCause
	for _, g := range out {
		if len(g.Checks) > 1 {
			groups = append(groups, g)
		}
	}
	return groups
}

// pointHints makes the hints of each group's later checks point to the
// first.
func pointHints(results []Result, groups []SameCause) {
	for _, g := range groups {
		for i := range results {
			for _, id := range g.Checks[1:] {
				if results[i].ID == id {
					results[i].Hint = fmt.Sprintf("The same error as %s (%s): one cause; see %s's hint (oe-rt conform --explain %s).", g.Checks[0], g.Error, g.Checks[0], g.Checks[0])
				}
			}
		}
	}
}

// answeredErrors adds to errs, for each owner of its calls not in it yet,
// the first non-OK status the instance answered one of them with.
func (inst *instance) answeredErrors(errs map[string]string) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	for _, c := range inst.calls {
		if c.kind == kindAnswered && c.code != codes.OK && errs[c.owner] == "" {
			errs[c.owner] = client.CodeName(c.code) + ": " + c.message
		}
	}
}
