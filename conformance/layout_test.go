package conformance_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

// launcherProject is a --dir holding the runtime (a link to the test
// binary) at rt/fake and a start script bin/launch with the given body.
func launcherProject(t *testing.T, body string) string {
	self := fakeBin
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "rt"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	require.NoError(t, os.Symlink(self, filepath.Join(dir, "rt", "fake")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin", "launch"), []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return dir
}

// Under --config the working directory holds only what the master mounts:
// a launcher that runs its runtime by a path relative to the working
// directory (exec ./rt/fake) does not find it, as under the master, and
// start.listen fails with its output and what the master would have
// mounted. Nothing is left running.
func TestLauncherOutsideTheMounts(t *testing.T) {
	dir := launcherProject(t, "exec ./rt/fake")
	config := writeConfig(t, "# a configuration\n")
	rep := run(t, "plain", func(c *conformance.Config) {
		c.Dir, c.ConfigFile = dir, config
		c.Command = []string{"./bin/launch"}
		c.Run = []string{"start.listen"}
		c.StartTimeout = 3e9
	})
	r := result(t, rep, "start.listen")
	assert.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Contains(t, r.Message, "Under --config the runtime's working directory holds only what the master mounts there: etc/openedge/service.yml (the configuration, with the files beside service.yml), lib/openedge/oe-rt-conform (the package: --dir "+dir+", from which the runtime is run), and nothing else of --dir")
	var out string
	for _, l := range r.Output {
		out += l.Text + "\n"
	}
	assert.Contains(t, out, "rt/fake", "the launcher's own complaint is shown")
}

// The same runtime found from the launcher's own path starts: the master
// runs lib/<era>/<image>/<entry>, so $0 leads to the package.
func TestLauncherFromItsOwnPath(t *testing.T) {
	dir := launcherProject(t, `exec "$(dirname "$0")/../rt/fake"`)
	config := writeConfig(t, "# a configuration\n")
	for _, p := range []conformance.Profile{conformance.ProfileOpenEdge, conformance.ProfileBaetyl} {
		rep := run(t, "plain", func(c *conformance.Config) {
			c.Profile, c.Dir, c.ConfigFile = p, dir, config
			c.Command = []string{"./bin/launch"}
			c.Run = []string{"start.listen"}
		})
		r := result(t, rep, "start.listen")
		assert.Equal(t, conformance.Pass, r.Status, "%s: %s", p, r.Message)
	}
}
