package launch

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRingKeepsTheTail(t *testing.T) {
	r := NewRing(8)
	r.Write([]byte("abcdef"))
	r.Write([]byte("ghij"))
	assert.Equal(t, "cdefghij", r.String())
	r.Write([]byte("0123456789"))
	assert.Equal(t, "23456789", r.String())
	assert.Equal(t, int64(20), r.Total())
}

func TestParseHexAddr(t *testing.T) {
	a, err := parseHexAddr("0100007F:1F90")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", a)
	a, err = parseHexAddr("00000000000000000000000000000000:0050")
	require.NoError(t, err)
	assert.Equal(t, "[::]:80", a)
}

// A program that ignores SIGTERM and leaves a setsid grandchild behind is
// ended entirely by Stop; its listener is seen while it runs.
func TestStopEndsEverything(t *testing.T) {
	_ = EnableSubreaper()
	script := `trap '' TERM; setsid sleep 60 & exec /usr/bin/python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); time.sleep(60)"`
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		script = `trap '' TERM; setsid sleep 60 & sleep 60`
	}
	p, err := Start(Spec{Path: "sh", Args: []string{"-c", script}, Env: os.Environ()})
	require.NoError(t, err)
	if strings.Contains(script, "python3") {
		var addrs []string
		assert.Eventually(t, func() bool {
			var pids []int
			for _, pr := range Tree(p.Pid) {
				pids = append(pids, pr.Pid)
			}
			addrs, _ = Listeners(pids)
			return len(addrs) > 0
		}, 10*time.Second, 20*time.Millisecond)
		if assert.Len(t, addrs, 1) {
			host, _, _ := net.SplitHostPort(addrs[0])
			assert.Equal(t, "127.0.0.1", host)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the sampler see the grandchild
	assert.False(t, p.Stop(500*time.Millisecond), "a program that ignores SIGTERM is not a graceful stop")
	e, ok := p.ExitStatus()
	require.True(t, ok)
	assert.Equal(t, syscall.SIGKILL, e.Signal)
	assert.Empty(t, p.Leftovers())
	assert.Empty(t, Marked(CookieEnv+"="+p.cookie), "no process carries the cookie any more")
}
