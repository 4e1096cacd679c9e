package conformance_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

// TestDrainLostAnswer: a runtime that looks as if it drained (it stops
// accepting calls, takes the whole time of the call in flight and exits 0
// by itself) but whose answer never reaches the caller, as the Node
// template's runtime did on Node 18 (docs/new-node.md), fails
// shutdown.drain, while shutdown.sigterm and shutdown.exit-code, which it
// satisfies, pass.
func TestDrainLostAnswer(t *testing.T) {
	cfg := config(t, "drain-lost")
	cfg.Run = []string{"shutdown.sigterm", "shutdown.exit-code", "shutdown.drain"}
	rep, err := conformance.Run(context.Background(), cfg)
	require.NoError(t, err)
	r := byID(rep)
	assert.Equal(t, conformance.Pass, r["shutdown.sigterm"].Status, r["shutdown.sigterm"].Message)
	assert.Equal(t, conformance.Pass, r["shutdown.exit-code"].Status, r["shutdown.exit-code"].Message)
	drain := r["shutdown.drain"]
	assert.Equal(t, conformance.Fail, drain.Status, drain.Message)
	assert.Contains(t, drain.Message, "the 1s call in flight when SIGTERM arrived")
	assert.NotContains(t, drain.Message, "completed")
	t.Logf("shutdown.drain: %s", drain.Message)
	assertNoChildren(t)
}
