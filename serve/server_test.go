package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/testcert"
)

// callTimeout bounds every call a test makes that is not about deadlines.
const callTimeout = 10 * time.Second

// startServer runs New(cfg) and Serve on 127.0.0.1:0 until the test ends;
// tweak, when not nil, may change the server before it serves (an internal
// test may add functions to s.funcs). It returns the address.
func startServer(t *testing.T, cfg *Config, tweak func(*Server)) string {
	t.Helper()
	srv, err := New(cfg, nil)
	require.NoError(t, err)
	if tweak != nil {
		tweak(srv)
	}
	return serveOnLoopback(t, srv)
}

// serveOnLoopback serves srv on a free port of 127.0.0.1 for the length of
// the test, and checks that it stops cleanly. It returns the address.
func serveOnLoopback(t *testing.T, srv *Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s")
		}
	})
	return lis.Addr().String()
}

// connect dials addr for the length of the test.
func connect(t *testing.T, addr string, opts client.Options) *grpc.ClientConn {
	t.Helper()
	conn, err := client.Dial(addr, opts)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// start runs a server with cfg and returns an OpenEdge client for it.
func start(t *testing.T, cfg *Config, tweak func(*Server)) *client.Client {
	t.Helper()
	return client.New(connect(t, startServer(t, cfg, tweak), client.Options{}), client.OpenEdge())
}

// fields are the call fields every test request carries.
func fields(fn string, payload []byte) *client.Message {
	return &client.Message{ID: 9, QOS: 1, Topic: "t/x", FunctionName: fn, FunctionInvokeID: "inv-1", Payload: payload}
}

func call(t *testing.T, c *client.Client, m *client.Message) (*client.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return c.Call(ctx, m)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func TestEcho(t *testing.T) {
	c := start(t, DefaultConfig(), nil)
	for name, p := range map[string][]byte{
		"empty":             nil,
		"text":              []byte("hello"),
		"invalid UTF-8":     {0xff, 0xfe, 0xc3, 0x28},
		"NUL bytes":         {0, 0, 'a', 0},
		"JSON":              []byte(`{"a": [1, 2.5, "x"], "b": null}`),
		"1 MiB random":      randomBytes(t, 1<<20),
		"just under 4 MiB":  randomBytes(t, 4<<20-64),
		"newlines and CRLF": []byte("a\r\nb\n\x00"),
	} {
		t.Run(name, func(t *testing.T) {
			res, err := call(t, c, fields("echo", p))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(p, res.Payload), "payload changed: %d bytes in, %d out", len(p), len(res.Payload))
		})
	}
}

func TestContextFixture(t *testing.T) {
	c := start(t, DefaultConfig(), nil)
	for _, m := range []*client.Message{
		{QOS: 0, Topic: "", FunctionName: "context", FunctionInvokeID: ""},
		{QOS: 1, Topic: "t/x", FunctionName: "context", FunctionInvokeID: "inv-1", Payload: []byte("ignored")},
		{QOS: 4294967295, Topic: "ünï/cødé \"quoted\"", FunctionName: "context", FunctionInvokeID: "0f8fad5b-d9cb-469f-a165-70867728950e"},
	} {
		res, err := call(t, c, m)
		require.NoError(t, err)
		var got struct {
			QOS      *uint32 `json:"messageQOS"`
			Topic    *string `json:"messageTopic"`
			Function *string `json:"functionName"`
			InvokeID *string `json:"functionInvokeID"`
		}
		require.NoError(t, json.Unmarshal(res.Payload, &got), "%s", res.Payload)
		require.NotNil(t, got.QOS, "messageQOS is a number: %s", res.Payload)
		require.NotNil(t, got.Topic)
		require.NotNil(t, got.Function)
		require.NotNil(t, got.InvokeID)
		assert.Equal(t, m.QOS, *got.QOS)
		assert.Equal(t, m.Topic, *got.Topic)
		assert.Equal(t, "context", *got.Function)
		assert.Equal(t, m.FunctionInvokeID, *got.InvokeID)
	}
}

func TestNoneAndFail(t *testing.T) {
	c := start(t, DefaultConfig(), nil)
	res, err := call(t, c, fields("none", []byte("something")))
	require.NoError(t, err)
	assert.Empty(t, res.Payload)

	_, err = call(t, c, fields("fail", []byte("x")))
	assert.Equal(t, codes.Unknown, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "conformance failure")
	_, err = call(t, c, fields("echo", []byte("x")))
	assert.NoError(t, err, "serving goes on after a failure")
}

func TestSleep(t *testing.T) {
	c := start(t, DefaultConfig(), nil)
	for _, p := range []string{`{"ms": 0}`, `{"ms": 20}`, `{"ms": 5, "other": true}`} {
		res, err := call(t, c, fields("sleep", []byte(p)))
		require.NoError(t, err, p)
		assert.Equal(t, p, string(res.Payload), "sleep returns the payload")
	}
	for _, p := range []string{``, `not json`, `{}`, `{"ms": -1}`, `{"ms": "5"}`, `[5]`} {
		_, err := call(t, c, fields("sleep", []byte(p)))
		assert.Equal(t, codes.Unknown, status.Code(err), p)
		assert.Contains(t, status.Convert(err).Message(), `{"ms": N}`, p)
	}
}

// TestSleepHonoursCancellation watches the fixture itself: when the caller's
// deadline passes or the caller cancels, the function returns the context's
// error long before its 60 s are up.
func TestSleepHonoursCancellation(t *testing.T) {
	returned := make(chan error, 2)
	c := start(t, DefaultConfig(), func(s *Server) {
		s.funcs["sleep"] = func(ctx context.Context, c *Call) ([]byte, error) {
			out, err := Fixtures["sleep"](ctx, c)
			returned <- err
			return out, err
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, fields("sleep", []byte(`{"ms": 60000}`)))
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
	select {
	case err := <-returned:
		// The server's own timer or the client's cancellation, whichever
		// comes first, ends the call's context.
		assert.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled), "%v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("sleep did not return after the deadline")
	}

	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, fields("sleep", []byte(`{"ms": 60000}`)))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		assert.Equal(t, codes.Canceled, status.Code(err))
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
	select {
	case err := <-returned:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("sleep did not return after the caller cancelled")
	}
}

// TestFieldsUnchanged: under both profiles, every fixture answers with the
// request's fields untouched; only Payload may differ.
func TestFieldsUnchanged(t *testing.T) {
	addr := startServer(t, DefaultConfig(), nil)
	conn := connect(t, addr, client.Options{})
	payloads := map[string][]byte{"echo": []byte("p"), "context": nil, "none": []byte("p"), "sleep": []byte(`{"ms":1}`)}
	for _, schema := range []*client.Schema{client.OpenEdge(), client.Baetyl()} {
		c := client.New(conn, schema)
		for fn, p := range payloads {
			for _, m := range []*client.Message{
				{ID: 0, QOS: 0, Topic: "", FunctionName: fn, FunctionInvokeID: "", Payload: p},
				{ID: 18446744073709551615, QOS: 4294967295, Topic: "a/b/ü", FunctionName: fn, FunctionInvokeID: "id-\x00-x", Payload: p},
				{ID: 7, QOS: 1, Topic: "t", Timestamp: -9223372036854775808, FunctionName: fn, FunctionInvokeID: "i", Payload: p},
				{ID: 7, QOS: 2, Topic: "t", Timestamp: 1732500000123, FunctionName: fn, FunctionInvokeID: "i", Payload: p},
			} {
				if !schema.HasTimestamp() {
					m.Timestamp = 0
				}
				name := fmt.Sprintf("%s/%s/id=%d/ts=%d", schema.Service(), fn, m.ID, m.Timestamp)
				res, err := call(t, c, m)
				if !assert.NoError(t, err, name) {
					continue
				}
				got := *res
				got.Payload = m.Payload
				assert.Equal(t, *m, got, name)
			}
		}
	}
}

func TestUnknownFunction(t *testing.T) {
	c := start(t, DefaultConfig(), nil)
	for _, fn := range []string{"nope", "", "ECHO", "echo "} {
		_, err := call(t, c, fields(fn, nil))
		assert.Equal(t, codes.NotFound, status.Code(err), "%q", fn)
		assert.Contains(t, status.Convert(err).Message(), "context, echo, fail, none, sleep", "the message lists what is served")
	}
}

func TestPanicIsInternal(t *testing.T) {
	c := start(t, DefaultConfig(), func(s *Server) {
		s.funcs["boom"] = func(context.Context, *Call) ([]byte, error) { panic("kaboom") }
		s.funcs["nilmap"] = func(context.Context, *Call) ([]byte, error) {
			var m map[string]int
			m["x"] = 1
			return nil, nil
		}
	})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := []string{"boom", "nilmap"}[i%2]
			_, err := call(t, c, fields(fn, nil))
			assert.Equal(t, codes.Internal, status.Code(err))
			assert.Contains(t, status.Convert(err).Message(), "panicked")
		}()
	}
	wg.Wait()
	res, err := call(t, c, fields("echo", []byte("still here")))
	require.NoError(t, err, "serving goes on after panics")
	assert.Equal(t, "still here", string(res.Payload))
}

func TestMessageLimit(t *testing.T) {
	c := start(t, DefaultConfig(), nil)
	_, err := call(t, c, fields("echo", make([]byte, 4<<20+1)))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "over the default 4 MiB")
	_, err = call(t, c, fields("echo", []byte("x")))
	assert.NoError(t, err, "serving goes on")

	cfg := DefaultConfig()
	cfg.Server.Message.Length.Max = 1 << 10
	c = start(t, cfg, func(s *Server) {
		s.funcs["grow"] = func(context.Context, *Call) ([]byte, error) { return make([]byte, 4<<10), nil }
	})
	_, err = call(t, c, fields("echo", make([]byte, 900)))
	assert.NoError(t, err, "under a configured 1 KiB")
	_, err = call(t, c, fields("echo", make([]byte, 2<<10)))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "a request over a configured 1 KiB")
	_, err = call(t, c, fields("grow", nil))
	assert.Equal(t, codes.ResourceExhausted, status.Code(err), "a response over a configured 1 KiB")
}

func TestHealthAndReflection(t *testing.T) {
	conn := connect(t, startServer(t, DefaultConfig(), nil), client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)

	stream, err := reflectpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}))
	res, err := stream.Recv()
	require.NoError(t, err)
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	assert.Subset(t, names, []string{"openedge.Function", "baetyl.Function", "grpc.health.v1.Health"})

	// The descriptor reflection gives is enough to call the runtime.
	require.NoError(t, stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "baetyl.Function"}}))
	res, err = stream.Recv()
	require.NoError(t, err)
	assert.NotEmpty(t, res.GetFileDescriptorResponse().GetFileDescriptorProto())
	require.NoError(t, stream.CloseSend())
}

// TestGrace: stopping lets a call in flight finish within the grace period
// and cuts one that runs longer; Serve returns nil either way.
func TestGrace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		grace  time.Duration
		sleep  string
		wantOK bool
	}{
		{"call finishes within grace", 10 * time.Second, `{"ms": 300}`, true},
		{"call outlives grace", 100 * time.Millisecond, `{"ms": 60000}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Server.Timeout = Duration(tc.grace)
			entered := make(chan struct{}, 1)
			srv, err := New(cfg, nil)
			require.NoError(t, err)
			srv.funcs["sleep"] = func(ctx context.Context, c *Call) ([]byte, error) {
				entered <- struct{}{}
				return Fixtures["sleep"](ctx, c)
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, lis, nil) }()
			c := client.New(connect(t, lis.Addr().String(), client.Options{}), nil)
			called := make(chan error, 1)
			go func() {
				_, err := call(t, c, fields("sleep", []byte(tc.sleep)))
				called <- err
			}()
			select {
			case <-entered:
			case <-time.After(callTimeout):
				t.Fatal("the call did not arrive")
			}
			stop()
			select {
			case err := <-called:
				if tc.wantOK {
					assert.NoError(t, err, "a call in flight must complete")
				} else {
					assert.Error(t, err, "the grace period is over")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the call did not end")
			}
			select {
			case err := <-served:
				assert.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("Serve did not return")
			}
			_, err = net.DialTimeout("tcp", lis.Addr().String(), time.Second)
			assert.Error(t, err, "the listener is closed")
		})
	}
}

func writeScript(t *testing.T, dir, name, body string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755))
}

// gone reports whether pid has exited (a zombie counts as gone: it runs no
// more, and whether it is reaped depends on who its parent is now).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

// readPids waits for a script to write its pids to file.
func readPids(t *testing.T, file string) []int {
	t.Helper()
	var pids []int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			var p int
			if _, err := fmt.Sscan(f, &p); err != nil {
				return false
			}
			pids = append(pids, p)
		}
		return len(pids) > 0
	}, callTimeout, 10*time.Millisecond, "the script did not write %s", file)
	return pids
}

func TestExecHandler(t *testing.T) {
	dir := t.TempDir()
	writeScript(t, dir, "upper.sh", "tr a-z A-Z\n")
	writeScript(t, dir, "args.sh", "for a in \"$@\"; do echo \"[$a]\"; done\n")
	writeScript(t, dir, "env.sh", `echo "$OE_RT_MESSAGE_ID|$OE_RT_MESSAGE_QOS|$OE_RT_MESSAGE_TOPIC|$OE_RT_MESSAGE_TIMESTAMP|$OE_RT_FUNCTION_NAME|$OE_RT_FUNCTION_INVOKE_ID"`+"\n")
	writeScript(t, dir, "fail.sh", "cat >/dev/null; echo 'first line' >&2; head -c 5000 /dev/zero | tr '\\0' a >&2; echo >&2; echo 'something broke' >&2; exit 3\n")
	writeScript(t, dir, "pwd.sh", "pwd\n")
	writeScript(t, dir, "bg.sh", "sleep 60 &\necho $! > \"$1\"\necho done\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("not a program"), 0o644))
	cfg := DefaultConfig()
	cfg.Functions = []FunctionConfig{
		{Name: "upper", Handler: "exec:./upper.sh", CodeDir: dir},
		{Name: "args", Handler: "exec:./args.sh $(touch pwned-arg) ; `touch pwned-arg2` \"a b\"", CodeDir: dir},
		{Name: "env", Handler: "exec:./env.sh", CodeDir: dir},
		{Name: "fail", Handler: "exec:./fail.sh", CodeDir: dir},
		{Name: "pwd", Handler: "exec:./pwd.sh", CodeDir: dir},
		{Name: "bg", Handler: "exec:./bg.sh " + filepath.Join(dir, "bg.pid"), CodeDir: dir},
		{Name: "cat", Handler: "exec:cat"},
		{Name: "big", Handler: "exec:head -c 8192 /dev/zero"},
		{Name: "e", Handler: "echo"},
	}
	cfg.Server.Message.Length.Max = 2 << 20
	addr := startServer(t, cfg, nil)
	conn := connect(t, addr, client.Options{MaxMsgSize: 2 << 20})
	c := client.New(conn, nil)

	t.Run("stdout is the payload", func(t *testing.T) {
		res, err := call(t, c, fields("upper", []byte("hello")))
		require.NoError(t, err)
		assert.Equal(t, "HELLO", string(res.Payload))
	})
	t.Run("payload never passes through a shell", func(t *testing.T) {
		p := "$(touch pwned1); touch pwned2 `touch pwned3` | touch pwned4 && touch pwned5\n"
		res, err := call(t, c, fields("upper", []byte(p)))
		require.NoError(t, err)
		assert.Equal(t, strings.ToUpper(p), string(res.Payload))
		for i := 1; i <= 5; i++ {
			assert.NoFileExists(t, filepath.Join(dir, fmt.Sprintf("pwned%d", i)))
		}
	})
	t.Run("handler arguments never pass through a shell", func(t *testing.T) {
		res, err := call(t, c, fields("args", nil))
		require.NoError(t, err)
		assert.Equal(t, "[$(touch]\n[pwned-arg)]\n[;]\n[`touch]\n[pwned-arg2`]\n[\"a]\n[b\"]\n", string(res.Payload))
		assert.NoFileExists(t, filepath.Join(dir, "pwned-arg"))
		assert.NoFileExists(t, filepath.Join(dir, "pwned-arg2"))
	})
	t.Run("call fields in the environment", func(t *testing.T) {
		res, err := call(t, c, fields("env", nil))
		require.NoError(t, err)
		assert.Equal(t, "9|1|t/x|0|env|inv-1\n", string(res.Payload))
		bc := client.New(conn, client.Baetyl())
		m := fields("env", nil)
		m.Timestamp = -1732500000123
		res, err = call(t, bc, m)
		require.NoError(t, err)
		assert.Equal(t, "9|1|t/x|-1732500000123|env|inv-1\n", string(res.Payload))
	})
	t.Run("non-zero exit carries the tail of stderr", func(t *testing.T) {
		_, err := call(t, c, fields("fail", []byte("in")))
		assert.Equal(t, codes.Unknown, status.Code(err))
		msg := status.Convert(err).Message()
		assert.Contains(t, msg, "exit status 3")
		assert.Contains(t, msg, "something broke")
		assert.NotContains(t, msg, "first line", "only the tail")
		assert.Less(t, len(msg), 2048+200)
	})
	t.Run("runs in codedir", func(t *testing.T) {
		res, err := call(t, c, fields("pwd", nil))
		require.NoError(t, err)
		want, err := filepath.EvalSymlinks(dir)
		require.NoError(t, err)
		assert.Equal(t, want, strings.TrimSpace(string(res.Payload)))
	})
	t.Run("bytes both ways through a program from PATH", func(t *testing.T) {
		for _, p := range [][]byte{nil, {0, 0xff, 0xfe, '\n', 0}, randomBytes(t, 1<<20)} {
			res, err := call(t, c, fields("cat", p))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(p, res.Payload), "%d bytes in, %d out", len(p), len(res.Payload))
		}
	})
	t.Run("output over the message limit", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Server.Message.Length.Max = 4 << 10
		cfg.Functions = []FunctionConfig{{Name: "big", Handler: "exec:head -c 8192 /dev/zero"}}
		_, err := call(t, start(t, cfg, nil), fields("big", nil))
		assert.Equal(t, codes.ResourceExhausted, status.Code(err))
		assert.Contains(t, status.Convert(err).Message(), "output exceeds the message limit (server.message.length.max, 4096 bytes)")
	})
	t.Run("what the program leaves behind is killed, and does not hold the call", func(t *testing.T) {
		res, err := call(t, c, fields("bg", nil))
		require.NoError(t, err, "the program succeeded; its background child must not turn that into an error")
		assert.Equal(t, "done\n", string(res.Payload))
		pid := readPids(t, filepath.Join(dir, "bg.pid"))[0]
		assert.Eventually(t, func() bool { return gone(pid) }, callTimeout, 10*time.Millisecond, "background child %d outlived the call", pid)
	})
	t.Run("a fixture under another name", func(t *testing.T) {
		res, err := call(t, c, fields("e", []byte("x")))
		require.NoError(t, err)
		assert.Equal(t, "x", string(res.Payload))
	})
}

// TestExecDeadlineKillsGroup: when the call's deadline passes, the program
// and everything it started are gone — also when they ignore SIGTERM.
func TestExecDeadlineKillsGroup(t *testing.T) {
	dir := t.TempDir()
	writeScript(t, dir, "hang.sh", "sleep 60 &\necho $$ $! > \"$1\"\nwait\n")
	writeScript(t, dir, "stubborn.sh", "trap '' TERM\nsleep 60 &\necho $$ $! > \"$1\"\nwhile :; do wait; done\n")
	cfg := DefaultConfig()
	cfg.Functions = []FunctionConfig{
		{Name: "hang", Handler: "exec:./hang.sh " + filepath.Join(dir, "hang.pid"), CodeDir: dir},
		{Name: "stubborn", Handler: "exec:./stubborn.sh " + filepath.Join(dir, "stubborn.pid"), CodeDir: dir},
	}
	c := start(t, cfg, nil)
	for _, fn := range []string{"hang", "stubborn"} {
		t.Run(fn, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := c.Call(ctx, fields(fn, nil))
			assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
			pids := readPids(t, filepath.Join(dir, fn+".pid"))
			require.Len(t, pids, 2, "the script and its background child")
			for _, pid := range pids {
				assert.Eventually(t, func() bool { return gone(pid) }, 15*time.Second, 20*time.Millisecond,
					"pid %d outlived the call's deadline", pid)
			}
		})
	}
	t.Run("caller cancels", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(dir, "hang.pid")))
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Call(ctx, fields("hang", nil))
			errc <- err
		}()
		pids := readPids(t, filepath.Join(dir, "hang.pid"))
		cancel()
		select {
		case err := <-errc:
			assert.Equal(t, codes.Canceled, status.Code(err))
		case <-time.After(callTimeout):
			t.Fatal("the cancelled call did not return")
		}
		for _, pid := range pids {
			assert.Eventually(t, func() bool { return gone(pid) }, 15*time.Second, 20*time.Millisecond, "pid %d outlived the cancelled call", pid)
		}
	})
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notpem"), []byte("x"), 0o644))
	certs := testcert.Write(t, t.TempDir())
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"unknown handler", func(c *Config) { c.Functions = []FunctionConfig{{Name: "f", Handler: "nope"}} }, `function "f" (functions[0].handler): unknown handler "nope"`},
		{"exec without program", func(c *Config) { c.Functions = []FunctionConfig{{Name: "f", Handler: "exec:"}} }, "names no program"},
		{"missing script", func(c *Config) {
			c.Functions = []FunctionConfig{{Name: "f", Handler: "exec:./missing.sh", CodeDir: dir}}
		}, `function "f" (functions[0].handler): program ./missing.sh: ` + filepath.Join(dir, "missing.sh") + " does not exist (in codedir " + dir + ")"},
		{"not executable", func(c *Config) {
			c.Functions = []FunctionConfig{{Name: "f", Handler: "exec:./plain.txt", CodeDir: dir}}
		}, "is not an executable file"},
		{"a directory", func(c *Config) { c.Functions = []FunctionConfig{{Name: "f", Handler: "exec:" + dir}} }, "is not an executable file"},
		{"not in PATH", func(c *Config) { c.Functions = []FunctionConfig{{Name: "f", Handler: "exec:no-such-program-oe-rt"}} }, `program "no-such-program-oe-rt": not found in PATH`},
		{"relative to the working directory", func(c *Config) { c.Functions = []FunctionConfig{{Name: "f", Handler: "exec:./missing-oe-rt.sh"}} },
			"does not exist (relative to the working directory)"},
		{"missing certificate", func(c *Config) { c.Server.Cert, c.Server.Key = filepath.Join(dir, "nope.pem"), certs.ServerKey }, "load server certificate"},
		{"key does not match", func(c *Config) { c.Server.Cert, c.Server.Key = certs.ServerCert, certs.ClientKey }, "load server certificate"},
		{"missing ca", func(c *Config) {
			c.Server.Cert, c.Server.Key, c.Server.CA = certs.ServerCert, certs.ServerKey, filepath.Join(dir, "nope.pem")
		}, "read server.ca"},
		{"ca not PEM", func(c *Config) {
			c.Server.Cert, c.Server.Key, c.Server.CA = certs.ServerCert, certs.ServerKey, filepath.Join(dir, "notpem")
		}, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(cfg)
			_, err := New(cfg, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestTLS(t *testing.T) {
	certs := testcert.Write(t, t.TempDir())
	server := func(mutual bool) string {
		cfg := DefaultConfig()
		cfg.Server.Cert, cfg.Server.Key = certs.ServerCert, certs.ServerKey
		if mutual {
			cfg.Server.CA = certs.CA
		}
		return startServer(t, cfg, nil)
	}
	tlsAddr, mtlsAddr := server(false), server(true)
	for _, tc := range []struct {
		name string
		addr string
		tls  *client.TLS
		ok   bool
	}{
		{"TLS: plaintext client refused", tlsAddr, nil, false},
		{"TLS: client trusting the CA", tlsAddr, &client.TLS{CACert: certs.CA}, true},
		{"TLS: client trusting the CA, by name", tlsAddr, &client.TLS{CACert: certs.CA, ServerName: "localhost"}, true},
		{"TLS: client trusting another CA refused", tlsAddr, &client.TLS{CACert: certs.StrangerCA}, false},
		{"TLS: insecure client", tlsAddr, &client.TLS{Insecure: true}, true},
		{"mTLS: plaintext client refused", mtlsAddr, nil, false},
		{"mTLS: no client certificate refused", mtlsAddr, &client.TLS{CACert: certs.CA}, false},
		{"mTLS: client certificate from another CA refused", mtlsAddr, &client.TLS{CACert: certs.CA, Cert: certs.StrangerCert, Key: certs.StrangerKey}, false},
		{"mTLS: client certificate", mtlsAddr, &client.TLS{CACert: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client.New(connect(t, tc.addr, client.Options{TLS: tc.tls}), nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := c.Call(ctx, fields("echo", []byte("secret")))
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, "secret", string(res.Payload))
			} else {
				assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			}
		})
	}
}

func TestAddressPrecedence(t *testing.T) {
	env := map[string]string{
		"BAETYL_SERVICE_INSTANCE_ADDRESS":   "grpc://a:1",
		"OPENEDGE_SERVICE_INSTANCE_ADDRESS": "b:1",
		"OPENEDGE_SERVICE_ADDRESS":          "c:1",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := DefaultConfig()
	cfg.Server.Address = "d:1"
	addr, src, err := ResolveAddress("flag:1", cfg, lookup)
	require.NoError(t, err)
	assert.Equal(t, []string{"flag:1", "--address"}, []string{addr, src})
	for _, want := range []struct{ addr, src, unset string }{
		{"a:1", "$BAETYL_SERVICE_INSTANCE_ADDRESS", "BAETYL_SERVICE_INSTANCE_ADDRESS"},
		{"b:1", "$OPENEDGE_SERVICE_INSTANCE_ADDRESS", "OPENEDGE_SERVICE_INSTANCE_ADDRESS"},
		{"c:1", "$OPENEDGE_SERVICE_ADDRESS", "OPENEDGE_SERVICE_ADDRESS"},
		{"d:1", "server.address", ""},
	} {
		addr, src, err = ResolveAddress("", cfg, lookup)
		require.NoError(t, err)
		assert.Equal(t, []string{want.addr, want.src}, []string{addr, src})
		delete(env, want.unset)
	}
	cfg.Server.Address = ""
	_, _, err = ResolveAddress("", cfg, lookup)
	require.Error(t, err)
	for _, s := range []string{"no address", "--address", "BAETYL_SERVICE_INSTANCE_ADDRESS", "OPENEDGE_SERVICE_INSTANCE_ADDRESS", "OPENEDGE_SERVICE_ADDRESS", "server.address"} {
		assert.Contains(t, err.Error(), s)
	}
}

func TestNamePrecedence(t *testing.T) {
	env := map[string]string{
		"BAETYL_SERVICE_INSTANCE_NAME":   "a",
		"OPENEDGE_SERVICE_INSTANCE_NAME": "b",
		"OPENEDGE_SERVICE_NAME":          "c",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg := DefaultConfig()
	cfg.Name = "d"
	for _, want := range []struct{ name, unset string }{
		{"a", "BAETYL_SERVICE_INSTANCE_NAME"}, {"b", "OPENEDGE_SERVICE_INSTANCE_NAME"}, {"c", "OPENEDGE_SERVICE_NAME"}, {"d", ""},
	} {
		assert.Equal(t, want.name, ResolveName(cfg, lookup))
		delete(env, want.unset)
	}
	assert.Equal(t, "oe-rt", ResolveName(DefaultConfig(), lookup))
}

func TestRun(t *testing.T) {
	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		err = Run(context.Background(), Options{Address: l.Addr().String()})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "listen on "+l.Addr().String()+" (from --address): the address is already in use")
	})
	t.Run("no address", func(t *testing.T) {
		err := Run(context.Background(), Options{LookupEnv: func(string) (string, bool) { return "", false }})
		assert.ErrorContains(t, err, "no address to listen on")
	})
	t.Run("address from the environment, ready, stop", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		env := map[string]string{"OPENEDGE_SERVICE_ADDRESS": "127.0.0.1:0"}
		ready := make(chan net.Addr, 1)
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Ready: func(a net.Addr) { ready <- a }})
		}()
		var addr net.Addr
		select {
		case addr = <-ready:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-time.After(callTimeout):
			t.Fatal("not ready")
		}
		res, err := call(t, client.New(connect(t, addr.String(), client.Options{}), nil), fields("echo", []byte("hi")))
		require.NoError(t, err)
		assert.Equal(t, "hi", string(res.Payload))
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return")
		}
	})
}

func TestCheckAddress(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", ":50051", "localhost:1", "[::1]:50051", "0.0.0.0:65535", "my-host.local:8080"} {
		assert.NoError(t, CheckAddress(ok), ok)
	}
	for addr, want := range map[string]string{
		"nonsense":               "want host:port",
		"127.0.0.1":              "want host:port",
		":99999":                 "port 99999 is out of range",
		"127.0.0.1:-1":           `port "-1": want a number`,
		"127.0.0.1:":             `port "": want a number`,
		"127.0.0.1:grpc":         `port "grpc": want a number`,
		"http://127.0.0.1:50051": "a http:// URL is not an address",
		"unix:///tmp/x.sock":     "a unix:// URL is not an address",
		"a b:1":                  `host "a b"`,
		"::1:50051":              "want host:port",
	} {
		assert.ErrorContains(t, CheckAddress(addr), want, addr)
	}
	// Accepted prefixes are dropped before the check.
	addr, _, err := ResolveAddress("grpc://127.0.0.1:1", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1", addr)
	_, _, err = ResolveAddress("", nil, func(string) (string, bool) { return "tcp://x", true })
	assert.ErrorContains(t, err, `address "tcp://x" (from $BAETYL_SERVICE_INSTANCE_ADDRESS): want host:port`)
}

// An empty payload reaches a function as its era's own runtimes hand it
// over: {} in a call of baetyl.Function, empty in a call of
// openedge.Function; a function that returns nothing answers empty in both.
func TestEmptyPayloadPerEra(t *testing.T) {
	conn := connect(t, startServer(t, DefaultConfig(), nil), client.Options{})
	for _, tc := range []struct {
		schema     *client.Schema
		echo, none string
	}{
		{client.Baetyl(), "{}", ""},
		{client.OpenEdge(), "", ""},
	} {
		c := client.New(conn, tc.schema)
		res, err := call(t, c, fields("echo", nil))
		require.NoError(t, err)
		assert.Equal(t, tc.echo, string(res.Payload), "%s: echo of an empty payload", tc.schema.Service())
		res, err = call(t, c, fields("none", nil))
		require.NoError(t, err)
		assert.Equal(t, tc.none, string(res.Payload), "%s: none", tc.schema.Service())
	}
}
