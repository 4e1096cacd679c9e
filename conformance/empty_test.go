package conformance_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/oe-rt/oe-rt/conformance"
)

// echo.empty and none.empty say what the function manager publishes for
// the runtime under test, and how the era's own runtimes compare: the
// reference runtime answers as each era's runtimes do.
func TestEmptyResultsSayWhatIsPublished(t *testing.T) {
	for _, tc := range []struct {
		profile conformance.Profile
		echo    string
	}{
		{conformance.ProfileBaetyl, "empty in, {} out: the function manager publishes {}, as with Baetyl's own runtimes"},
		{conformance.ProfileOpenEdge, "empty in, empty out: the function manager publishes nothing for it (it acknowledges a QoS 1 message), as with OpenEdge 0.1.2's own runtimes"},
	} {
		rep := run(t, "serve", func(c *conformance.Config) {
			c.Profile = tc.profile
			c.Run = []string{"echo.empty", "none.empty"}
		})
		r := result(t, rep, "echo.empty")
		assert.Equal(t, conformance.Pass, r.Status)
		assert.Contains(t, r.Message, tc.echo)
		r = result(t, rep, "none.empty")
		assert.Equal(t, conformance.Pass, r.Status)
		assert.Contains(t, r.Message, "OK with an empty payload: the function manager publishes nothing for it")
	}
	// A runtime that answers {} under OpenEdge 0.1.2 passes, and the
	// message says that the manager publishes {} where OpenEdge's own
	// runtimes would publish nothing.
	rep := run(t, "empty-object", func(c *conformance.Config) { c.Run = []string{"echo.empty"} })
	r := result(t, rep, "echo.empty")
	assert.Equal(t, conformance.Pass, r.Status, r.Message)
	assert.Contains(t, r.Message, "empty in, {} out: the function manager publishes {}; OpenEdge 0.1.2's own runtimes hand such a function None, answer an empty payload and the manager publishes nothing")
}
