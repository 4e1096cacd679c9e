package launch

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A launcher script that passes SIGTERM on with `kill -TERM 0` (a common
// idiom) signals its whole process group: in the master's group, that is
// the master. The stand-in sees it; the script, its child and the
// stand-in are all gone after Cleanup, and the launcher's own SIGKILLs
// are not taken for the program's.
func TestMasterGroupSeesASignalToTheGroup(t *testing.T) {
	// "ready" only once the child runs sleep: a SIGTERM that reached the
	// forked shell before its exec would be taken by the inherited trap,
	// and sleep would then run its 60 s out (a race of the test's own,
	// seen on a busy machine).
	script := `trap 'trap "" TERM; kill -TERM 0; wait; exit 0' TERM; sleep 60 & until [ "$(cat /proc/$!/comm 2>/dev/null)" = sleep ]; do :; done; echo ready; wait`
	p := start(t, Spec{Path: "sh", Args: []string{"-c", script}, MasterGroup: true})
	st, err := readStat(p.Pid)
	require.NoError(t, err)
	require.NotEqual(t, p.Pid, st.pgid, "the program is in the stand-in's group, not one of its own")
	require.True(t, theHost.Load().reg.has(st.pgid), "the group's leader is the launcher's stand-in")
	leader, err := readStat(st.pgid)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(p.Stdout(), "ready") }, 10*time.Second, 5*time.Millisecond, "the script traps TERM")
	assert.Empty(t, p.GroupSignals())
	assert.True(t, p.Terminate(10*time.Second), "the script exits 0 after passing SIGTERM on; it wrote %q %q; its group: %v", p.Stdout(), p.Stderr(), Tree(st.pgid))
	e, _ := p.ExitStatus()
	assert.Equal(t, 0, e.Code, "%s", e)
	p.Cleanup()
	sigs := p.GroupSignals()
	require.Len(t, sigs, 1, "%v", sigs)
	assert.Equal(t, syscall.SIGTERM, sigs[0].Signal)
	assert.Empty(t, p.Survivors())
	assert.False(t, Exists(leader.Pid, leader.Start), "the stand-in is gone, reaped")
}

// A program that signals only itself leaves the stand-in alone: Cleanup
// kills what it left, and no signal is recorded.
func TestMasterGroupQuietProgram(t *testing.T) {
	p := start(t, Spec{Path: "sh", Args: []string{"-c", "sleep 60 & kill -TERM $$"}, MasterGroup: true})
	<-p.Done()
	p.Cleanup()
	assert.Empty(t, p.GroupSignals())
	// A stand-in that is killed outright (SIGKILL to the group) is seen
	// dead of it.
	q := start(t, Spec{Path: "sh", Args: []string{"-c", "kill -KILL 0"}, MasterGroup: true})
	<-q.Done()
	q.Cleanup()
	sigs := q.GroupSignals()
	require.NotEmpty(t, sigs)
	assert.Equal(t, syscall.SIGKILL, sigs[len(sigs)-1].Signal)
}

// Both stand-ins (the shell script where /bin/sh is, this executable
// re-executed elsewhere) record every signal that reaches the group, one
// at a time and the last just before the program exits and Cleanup ends
// the stand-in: the program ignores them itself and exits at once.
func TestStandInsRecordEverySignal(t *testing.T) {
	h := theHost.Load()
	require.NotEmpty(t, h.standInShell, "this machine has /bin/sh: the shell stand-in is the one in use")
	shell := h.standInShell
	t.Cleanup(func() { h.standInShell = shell })
	sent := []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT, syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGTSTP}
	for _, tc := range []struct{ name, shell string }{{"shell", shell}, {"self", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			h.standInShell = tc.shell
			for round := 0; round < 3; round++ {
				p := start(t, Spec{Path: "sh", Args: []string{"-c", `trap "" USR1 USR2 QUIT PIPE ALRM TSTP VTALRM; for s in USR1 USR2 QUIT PIPE ALRM TSTP; do kill -$s 0; sleep 0.02; done; kill -VTALRM 0`}, MasterGroup: true})
				<-p.Done()
				e, _ := p.ExitStatus()
				require.Equal(t, 0, e.Code, "%s: %s", e, p.Stderr())
				p.Cleanup()
				var got []syscall.Signal
				for _, s := range p.GroupSignals() {
					got = append(got, s.Signal)
				}
				assert.ElementsMatch(t, append(sent, syscall.SIGVTALRM), got, "round %d", round)
			}
		})
	}
}
