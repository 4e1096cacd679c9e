package conformance_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

// A start script that traps SIGTERM and passes it on with kill -TERM 0
// stops gracefully, leaves nothing, and passes every shutdown check; but
// under the master its group is the master's: run.process-group fails and
// says what that means. Nothing is left running.
func TestTermTrappingScriptSignalsTheMaster(t *testing.T) {
	self := fakeBin
	script := filepath.Join(t.TempDir(), "start.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\ntrap 'trap \"\" TERM; kill -TERM 0' TERM\n\""+self+"\" &\nchild=$!\nwait $child\nwait $child\nexit 0\n"), 0o755))
	rep := run(t, "plain", func(c *conformance.Config) {
		c.Command = []string{script}
		c.Run = []string{"shutdown.*", "run.process-group"}
	})
	for _, id := range []string{"shutdown.sigterm", "shutdown.exit-code", "shutdown.no-orphans"} {
		r := result(t, rep, id)
		assert.Equal(t, conformance.Pass, r.Status, "%s: %s", id, r.Message)
	}
	r := result(t, rep, "run.process-group")
	assert.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Contains(t, r.Message, "SIGTERM reached the process group: under the master that is the master itself, the hub, the function manager and every service (SIGTERM from instance #")
	assert.Contains(t, r.Message, "(shutdown)")
}

// The same script with exec, as the templates' launchers do, signals no
// group: run.process-group passes and says over how many instances.
func TestExecScriptSignalsNoGroup(t *testing.T) {
	self := fakeBin
	script := filepath.Join(t.TempDir(), "start.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nexec \""+self+"\"\n"), 0o755))
	rep := run(t, "plain", func(c *conformance.Config) {
		c.Command = []string{script}
		c.Run = []string{"shutdown.sigterm", "run.process-group"}
	})
	r := result(t, rep, "run.process-group")
	assert.Equal(t, conformance.Pass, r.Status, r.Message)
	assert.Contains(t, r.Message, "no signal reached the master's stand-in")
}
