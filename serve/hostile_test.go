package serve

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/proto/openedge"
	"github.com/oe-rt/oe-rt/serve/internal/rawh2"
)

// syncBuffer is a log destination that tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLogged is startServer with the server's log kept.
func startLogged(t *testing.T, cfg *Config) (string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	return serveOnLoopback(t, srv), logs
}

// echoRequest is a marshalled openedge.FunctionMessage calling echo.
func echoRequest(t testing.TB, payload []byte) []byte {
	t.Helper()
	b, err := proto.Marshal(&openedge.FunctionMessage{FunctionName: "echo", Payload: payload})
	require.NoError(t, err)
	return b
}

func dialRaw(t *testing.T, addr string, settings ...http2.Setting) *rawh2.Conn {
	t.Helper()
	c, err := rawh2.Dial(addr, settings...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

const callPath = "/openedge.Function/Call"

// TestZeroWindow: a client that advertises a zero flow-control window and
// sends more echo calls than server.concurrent.max gets at most that many
// streams (the rest are refused), none of the responses' bytes, and its
// connection is closed once the responses have made no progress for
// server.call.timeout. Other clients are served meanwhile.
func TestZeroWindow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Server.Concurrent.Max = 8
	cfg.Server.Call.Timeout = Duration(time.Second)
	addr, logs := startLogged(t, cfg)
	attacker := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	req := echoRequest(t, bytes.Repeat([]byte("x"), 64<<10))
	const calls = 20
	var ids []uint32
	for range calls {
		id, err := attacker.Call(addr, callPath, req, callTimeout)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	answered := func(s map[uint32]rawh2.Stream) (headers, refused int) {
		for _, id := range ids {
			switch st := s[id]; {
			case st.Reset && st.Code == http2.ErrCodeRefusedStream:
				refused++
			case st.Headers > 0:
				headers++
			}
		}
		return headers, refused
	}
	require.True(t, attacker.Wait(callTimeout, func(s map[uint32]rawh2.Stream) bool {
		h, r := answered(s)
		return h == 8 && r == calls-8
	}), "want 8 streams answered and %d refused: %+v", calls-8, attacker.Streams())
	for id, s := range attacker.Streams() {
		assert.Zero(t, s.Data, "stream %d: no byte passes a zero window", id)
	}

	// Another client is served while the attacker's responses are stuck.
	res, err := call(t, client.New(connect(t, addr, client.Options{}), nil), fields("echo", []byte("still here")))
	require.NoError(t, err)
	assert.Equal(t, "still here", string(res.Payload))

	select {
	case <-attacker.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the stalled connection was not closed")
	}
	assert.Contains(t, logs.String(), "closing a connection: a response made no progress")
	assert.Contains(t, logs.String(), "limit=1s")
}

// TestSlowReaderIsNotCut: a client that opens its window a little at a
// time takes longer than server.call.timeout to read a response, but never
// lets it stall that long: it gets the whole response, and its connection
// stays.
func TestSlowReaderIsNotCut(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Server.Call.Timeout = Duration(time.Second)
	addr, logs := startLogged(t, cfg)
	reader := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	payload := bytes.Repeat([]byte("y"), 96<<10)
	id, err := reader.Call(addr, callPath, echoRequest(t, payload), callTimeout)
	require.NoError(t, err)
	require.True(t, reader.Wait(callTimeout, func(s map[uint32]rawh2.Stream) bool { return s[id].Headers > 0 }))
	const step = 16 << 10
	start := time.Now()
	for !reader.Streams()[id].Ended {
		require.Less(t, time.Since(start), 30*time.Second, "the response did not complete")
		require.NoError(t, reader.WindowUpdate(id, step))
		require.NoError(t, reader.WindowUpdate(0, step))
		select {
		case <-reader.Done():
			t.Fatalf("a slow but steady reader was cut: %v; log:\n%s", reader.Err(), logs.String())
		case <-time.After(300 * time.Millisecond):
		}
	}
	// Seven window updates 300 ms apart: the read took well over the
	// call timeout, which is what this test is about.
	assert.Greater(t, time.Since(start), 3*time.Second/2, "the read took longer than the call timeout")
	s := reader.Streams()[id]
	assert.Equal(t, "0", s.Status)
	assert.Greater(t, s.Data, len(payload))
	assert.NotContains(t, logs.String(), "no progress")
}

// TestClientResetIsNotAStall: a client that resets a stream whose response
// cannot be sent (zero window) owes the server nothing more on it; its
// connection is not taken for a stalled one.
func TestClientResetIsNotAStall(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Server.Call.Timeout = Duration(500 * time.Millisecond)
	addr, logs := startLogged(t, cfg)
	c := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	var ids []uint32
	for range 5 {
		id, err := c.Call(addr, callPath, echoRequest(t, []byte("abc")), callTimeout)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.True(t, c.Wait(callTimeout, func(s map[uint32]rawh2.Stream) bool {
		for _, id := range ids {
			if s[id].Headers == 0 {
				return false
			}
		}
		return true
	}))
	for _, id := range ids {
		require.NoError(t, c.Reset(id))
	}
	time.Sleep(2 * time.Second) // four times the call timeout
	require.NoError(t, c.Ping())
	assert.True(t, c.Wait(callTimeout, func(map[uint32]rawh2.Stream) bool { return c.PingAcks() > 0 }), "the connection should still answer")
	select {
	case <-c.Done():
		t.Fatalf("the connection was closed: %v", c.Err())
	default:
	}
	assert.NotContains(t, logs.String(), "no progress")
}

// TestPingFlood: keepalive enforcement. A client that pings more often
// than every 10 s is told to calm down and disconnected; one that pings
// at that pace, with or without calls, is not.
func TestPingFlood(t *testing.T) {
	addr, _ := startLogged(t, DefaultConfig())
	c := dialRaw(t, addr)
	for range 10 {
		if c.Ping() != nil {
			break
		}
	}
	select {
	case <-c.Done():
	case <-time.After(callTimeout):
		t.Fatal("a ping flood was not cut")
	}
	code, ok := c.GoAway()
	assert.True(t, ok, "GOAWAY before closing")
	assert.Equal(t, http2.ErrCodeEnhanceYourCalm, code)

	calm := dialRaw(t, addr)
	require.NoError(t, calm.Ping())
	require.True(t, calm.Wait(callTimeout, func(map[uint32]rawh2.Stream) bool { return calm.PingAcks() == 1 }))
	_, ok = calm.GoAway()
	assert.False(t, ok, "one ping is allowed on an idle connection")
}

// adoptOrphans makes the test process a child subreaper, as oe-rt serve is,
// for the length of the test.
func adoptOrphans(t *testing.T) {
	t.Helper()
	require.NoError(t, reap.enableAdoption())
	t.Cleanup(reap.disableAdoption)
}

// TestExecEnvironment: exec: programs do not see the master API's address
// or token, of either era, while serve's other variables and the call's
// reach them.
func TestExecEnvironment(t *testing.T) {
	for _, k := range convention.MasterEnv {
		t.Setenv(k, "secret-"+strings.ToLower(k))
	}
	t.Setenv("OE_RT_TEST_KEPT", "kept")
	cfg := DefaultConfig()
	cfg.Functions = []FunctionConfig{{Name: "env", Handler: "exec:/usr/bin/env"}}
	res, err := call(t, start(t, cfg, nil), fields("env", nil))
	require.NoError(t, err)
	env := string(res.Payload)
	assert.NotContains(t, env, "secret-")
	for _, k := range convention.MasterEnv {
		assert.NotContains(t, env, k+"=")
	}
	for _, kv := range []string{"OE_RT_TEST_KEPT=kept", "OE_RT_FUNCTION_NAME=env", "OE_RT_MESSAGE_TOPIC=t/x", "OE_RT_FUNCTION_INVOKE_ID=inv-1", "PATH="} {
		assert.Contains(t, env, kv)
	}
}

// TestExecOrphans: an exec: call owns its whole tree. What leaves the
// program's process group with setsid is ended when the call ends — also
// when it holds the output pipe, which then does not hold the call, and
// also a chain of sessions — and the call's result is what the program
// wrote.
func TestExecOrphans(t *testing.T) {
	adoptOrphans(t)
	dir := t.TempDir()
	// Each script starts its escapees, waits until they have written their
	// pids, and prints "done".
	writeScript(t, dir, "detached.sh", `setsid sh -c 'echo $$ > "$1"; exec sleep 222' sh "$1" </dev/null >/dev/null 2>&1 &
while [ ! -s "$1" ]; do sleep 0.01; done
echo done
`)
	writeScript(t, dir, "holder.sh", `setsid sh -c 'echo $$ > "$1"; exec sleep 333' sh "$1" &
while [ ! -s "$1" ]; do sleep 0.01; done
echo done
`)
	writeScript(t, dir, "chain.sh", `setsid sh -c 'setsid sh -c "echo \$\$ >> $1; exec sleep 444" & echo $$ >> "$1"; sleep 444' sh "$1" </dev/null >/dev/null 2>&1 &
until [ "$(cat "$1" 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.01; done
echo done
`)
	cfg := DefaultConfig()
	for _, n := range []string{"detached", "holder", "chain"} {
		cfg.Functions = append(cfg.Functions, FunctionConfig{Name: n, Handler: "exec:./" + n + ".sh " + filepath.Join(dir, n+".pid"), CodeDir: dir})
	}
	c := start(t, cfg, nil)
	for _, n := range []string{"detached", "holder", "chain"} {
		t.Run(n, func(t *testing.T) {
			res, err := call(t, c, fields(n, nil))
			require.NoError(t, err)
			assert.Equal(t, "done\n", string(res.Payload))
			pids := readPids(t, filepath.Join(dir, n+".pid"))
			for _, pid := range pids {
				assert.True(t, gone(pid), "pid %d left the call's process group and outlived the call", pid)
			}
			assert.Empty(t, orphanChildren(), "orphans were left unreaped")
		})
	}
}

// orphanChildren lists the test process's children that are not exec:
// programs in progress.
func orphanChildren() []int {
	var pids []int
	for _, o := range reap.orphans() {
		pids = append(pids, o.pid)
	}
	return pids
}

// TestExecPipeHolderWithoutAdoption: in a process that does not adopt
// orphans (a library user's), a descendant that escapes with the output
// pipe survives, but it does not hold the call, nor does it take output
// that the program wrote.
func TestExecPipeHolderWithoutAdoption(t *testing.T) {
	require.False(t, reap.adopting())
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "holder.pid")
	writeScript(t, dir, "holder.sh", `setsid sh -c 'echo $$ > "$1"; exec sleep 60' sh "$1" &
while [ ! -s "$1" ]; do sleep 0.01; done
head -c 100000 /dev/zero | tr '\0' a
`)
	cfg := DefaultConfig()
	cfg.Functions = []FunctionConfig{{Name: "holder", Handler: "exec:./holder.sh " + pidFile, CodeDir: dir}}
	c := start(t, cfg, nil)
	res, err := call(t, c, fields("holder", nil))
	pid := readPids(t, pidFile)[0]
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill()
		}
	})
	require.NoError(t, err, "the call returned while the holder still runs")
	assert.Equal(t, strings.Repeat("a", 100000), string(res.Payload))
	assert.False(t, gone(pid), "without adoption the escapee is out of reach (this test proves the pipe handling only)")
}

// TestExecOutputLimit: a program that writes without end is killed as soon
// as its output passes server.message.length.max, and the call fails with
// RESOURCE_EXHAUSTED naming the limit — long before the caller's deadline.
func TestExecOutputLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Server.Message.Length.Max = 64 << 10
	cfg.Functions = []FunctionConfig{
		{Name: "yes", Handler: "exec:yes"},
		{Name: "under", Handler: fmt.Sprintf("exec:head -c %d /dev/zero", 63<<10)},
	}
	c := start(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Call(ctx, fields("yes", nil))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "server.message.length.max, 65536 bytes")
	assert.NoError(t, ctx.Err(), "the call ran until the caller's deadline")

	res, err := call(t, c, fields("under", nil))
	require.NoError(t, err, "output under the limit is the result")
	assert.Len(t, res.Payload, 63<<10)
}

// TestExecOutputLimitKillsTheProgram: the program is gone when the call
// fails.
func TestExecOutputLimitKillsTheProgram(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "yes.pid")
	writeScript(t, dir, "yes.sh", "echo $$ > \"$1\"\nexec yes\n")
	cfg := DefaultConfig()
	cfg.Server.Message.Length.Max = 64 << 10
	cfg.Functions = []FunctionConfig{{Name: "yes", Handler: "exec:./yes.sh " + pidFile, CodeDir: dir}}
	_, err := call(t, start(t, cfg, nil), fields("yes", nil))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	pid := readPids(t, pidFile)[0]
	assert.True(t, gone(pid), "yes (pid %d) still runs after its call failed", pid)
	_, statErr := os.Stat(fmt.Sprintf("/proc/%d", pid))
	assert.True(t, os.IsNotExist(statErr), "yes (pid %d) was not reaped", pid)
}
