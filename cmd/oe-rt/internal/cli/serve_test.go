package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// commandTimeout bounds every oe-rt process a test runs to completion.
const commandTimeout = 30 * time.Second

// cleanEnv is the test's environment without the convention's variables,
// so that a developer's OPENEDGE_SERVICE_ADDRESS cannot change a test, plus
// extra ("NAME=value").
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OPENEDGE_") || strings.HasPrefix(kv, "BAETYL_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// serveSpec says how to start `oe-rt serve` for a test.
type serveSpec struct {
	args []string // after "serve"
	env  []string // extra variables
	dir  string   // working directory
	// noAddress leaves --address out (the address comes from env or config,
	// which must then name addr).
	noAddress bool
	addr      string // the address to wait for; default: a free port passed with --address
}

// startServe starts `oe-rt serve` as a child process in its own process
// group and waits, at most 15 s, until it accepts connections. The test's
// cleanup stops it and checks that nothing it started is left.
func startServe(t *testing.T, s serveSpec) (*launch.Process, string) {
	t.Helper()
	addr := s.addr
	if addr == "" {
		var err error
		addr, err = launch.FreePort()
		require.NoError(t, err)
	}
	args := append([]string{"serve"}, s.args...)
	if !s.noAddress {
		args = append(args, "--address", addr)
	}
	p, err := launch.Start(launch.Spec{Path: oeRT, Args: args, Env: cleanEnv(s.env...), Dir: s.dir})
	require.NoError(t, err)
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		assert.Empty(t, p.Leftovers(), "processes outlived oe-rt serve")
	})
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil || p.Exited()
	}, 15*time.Second, 10*time.Millisecond, "oe-rt serve did not listen on %s", addr)
	require.False(t, p.Exited(), "oe-rt serve exited: %s", p.Stderr())
	return p, addr
}

// waitExit waits at most 20 s for p to exit and returns how.
func waitExit(t *testing.T, p *launch.Process) launch.Exit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, p.Wait(ctx), "oe-rt serve did not exit; stderr: %s", p.Stderr())
	e, _ := p.ExitStatus()
	return e
}

// oeResult is how an oe-rt process ended.
type oeResult struct {
	code           int
	stdout, stderr string
}

// oe runs the oe-rt binary with args to completion (at most commandTimeout)
// in a clean environment plus env, with stdin.
func oe(t *testing.T, stdin []byte, env []string, args ...string) oeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, oeRT, args...)
	cmd.Env = cleanEnv(env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "oe-rt %s did not finish within %s", strings.Join(args, " "), commandTimeout)
	r := oeResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run oe-rt: %v", err)
	}
	assert.NotContains(t, r.stderr, "goroutine ", "no stack trace")
	assert.NotContains(t, r.stderr, "panic:", "no panic")
	return r
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
	return p
}

func dialT(t *testing.T, addr string) *client.Client {
	t.Helper()
	conn, err := client.Dial(addr, client.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return client.New(conn, nil)
}

func callT(t *testing.T, c *client.Client, fn, payload string) (*client.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return c.Call(ctx, &client.Message{FunctionName: fn, Payload: []byte(payload)})
}

// TestServeStopsGracefully: SIGTERM or SIGINT while calls are in flight;
// every call completes (after the signal), serve exits 0 and logs the stop.
func TestServeStopsGracefully(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p, addr := startServe(t, serveSpec{})
			c := dialT(t, addr)
			_, err := callT(t, c, "echo", "warm-up")
			require.NoError(t, err)

			const calls = 8
			var wg sync.WaitGroup
			errs := make([]error, calls)
			ends := make([]time.Time, calls)
			payloads := make([]string, calls)
			for i := range calls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					payload := fmt.Sprintf(`{"ms": 500, "call": %d}`, i)
					var res *client.Message
					res, errs[i] = callT(t, c, "sleep", payload)
					ends[i] = time.Now()
					if res != nil {
						payloads[i] = string(res.Payload)
					}
				}()
			}
			time.Sleep(200 * time.Millisecond)
			signalled := time.Now()
			require.NoError(t, syscall.Kill(p.Pid, sig))
			wg.Wait()
			for i := range calls {
				if assert.NoError(t, errs[i], "call %d in flight was lost", i) {
					assert.Equal(t, fmt.Sprintf(`{"ms": 500, "call": %d}`, i), payloads[i])
					assert.True(t, ends[i].After(signalled), "call %d ended before the signal, so it proves nothing", i)
				}
			}
			e := waitExit(t, p)
			assert.Equal(t, 0, e.Code, "%s; stderr: %s", e, p.Stderr())
			assert.Contains(t, p.Stderr(), "runtime stopping")
			assert.Contains(t, p.Stderr(), "runtime stopped")
			assert.NotContains(t, p.Stderr(), "grace period over")
			_, err = net.DialTimeout("tcp", addr, time.Second)
			assert.Error(t, err, "nothing listens after the stop")
		})
	}
}

// TestServeGraceOver: a call that outlives server.timeout is cut, and serve
// still exits 0, saying so in the log.
func TestServeGraceOver(t *testing.T) {
	cfg := writeFile(t, t.TempDir(), "s.yml", "server:\n  timeout: 300ms\n", 0o644)
	p, addr := startServe(t, serveSpec{args: []string{"-c", cfg}})
	c := dialT(t, addr)
	_, err := callT(t, c, "echo", "warm-up")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := callT(t, c, "sleep", `{"ms": 60000}`)
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, p.Signal(syscall.SIGTERM))
	select {
	case err := <-errc:
		assert.Contains(t, []codes.Code{codes.Unavailable, codes.Canceled}, status.Code(err), "%v", err)
	case <-time.After(commandTimeout):
		t.Fatal("the call did not end when the grace period was over")
	}
	e := waitExit(t, p)
	assert.Equal(t, 0, e.Code, "%s; stderr: %s", e, p.Stderr())
	assert.Contains(t, p.Stderr(), "grace period over")
}

// TestServeStopKillsExecHandlers: a program in flight when serve stops —
// one that ignores SIGTERM and has a child — is gone with serve.
func TestServeStopKillsExecHandlers(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	writeFile(t, dir, "stubborn.sh", "#!/bin/sh\ntrap '' TERM\nsleep 60 &\necho $$ $! > "+pidFile+"\nwhile :; do wait; done\n", 0o755)
	cfg := writeFile(t, dir, "s.yml", "server:\n  timeout: 200ms\nfunctions:\n  - name: stubborn\n    handler: exec:./stubborn.sh\n    codedir: "+dir+"\n", 0o644)
	p, addr := startServe(t, serveSpec{args: []string{"-c", cfg}})
	c := dialT(t, addr)
	errc := make(chan error, 1)
	go func() {
		_, err := callT(t, c, "stubborn", "")
		errc <- err
	}()
	var pids []int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pids = nil
		for _, f := range strings.Fields(string(b)) {
			var n int
			if _, err := fmt.Sscan(f, &n); err == nil {
				pids = append(pids, n)
			}
		}
		return len(pids) == 2
	}, 15*time.Second, 10*time.Millisecond)
	require.NoError(t, p.Signal(syscall.SIGTERM))
	e := waitExit(t, p)
	assert.Equal(t, 0, e.Code, "%s; stderr: %s", e, p.Stderr())
	select {
	case err := <-errc:
		assert.Error(t, err)
	case <-time.After(commandTimeout):
		t.Fatal("the call did not end")
	}
	for _, pid := range pids {
		// serve killed its handler's group before it exited: nothing to
		// wait for (a zombie is dead; its reaping is up to its parent).
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err == nil {
			s := string(b)
			i := strings.LastIndexByte(s, ')')
			assert.Equal(t, "Z", s[i+2:i+3], "pid %d of the exec handler outlived oe-rt serve", pid)
		}
	}
}

func TestServeErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	dir := t.TempDir()
	badYAML := writeFile(t, dir, "bad.yml", "name: x\nserver:\n  adress: x\n", 0o644)
	badSyntax := writeFile(t, dir, "syntax.yml", "name: x\nserver: [\n", 0o644)
	badHandler := writeFile(t, dir, "handler.yml", "functions:\n  - name: a\n    handler: sayhi.handler\n", 0o644)
	missingScript := writeFile(t, dir, "script.yml", "functions:\n  - name: a\n    handler: exec:./missing.sh\n    codedir: "+dir+"\n", 0o644)
	notInPath := writeFile(t, dir, "path.yml", "functions:\n  - name: a\n    handler: echo\n  - name: b\n    handler: exec:no-such-program-oe-rt\n", 0o644)
	serverString := writeFile(t, dir, "server.yml", "server: x\n", 0o644)
	functionsString := writeFile(t, dir, "functions.yml", "name: x\nfunctions: echo\n", 0o644)
	badAddress := writeFile(t, dir, "address.yml", "server:\n  address: 127.0.0.1:70000\n", 0o644)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		code int
		want []string
	}{
		{"port in use", []string{"serve", "--address", l.Addr().String()}, nil, 1,
			[]string{"listen on " + l.Addr().String() + " (from --address): the address is already in use"}},
		{"port in use, from the environment", []string{"serve"}, []string{"OPENEDGE_SERVICE_ADDRESS=" + l.Addr().String()}, 1,
			[]string{"(from $OPENEDGE_SERVICE_ADDRESS): the address is already in use"}},
		{"no address", []string{"serve"}, nil, 2,
			[]string{"no address to listen on", "--address", "BAETYL_SERVICE_INSTANCE_ADDRESS", "OPENEDGE_SERVICE_ADDRESS", "server.address"}},
		{"unknown key", []string{"serve", "-c", badYAML}, nil, 2, []string{badYAML + `:3: unknown key "adress" in server`}},
		{"YAML syntax", []string{"serve", "-c", badSyntax}, nil, 2, []string{badSyntax + ":2: did not find expected node content"}},
		{"unknown handler", []string{"serve", "-c", badHandler, "--address", "127.0.0.1:0"}, nil, 2, []string{badHandler + `: function "a" (functions[0].handler): unknown handler "sayhi.handler"`}},
		{"missing exec program", []string{"serve", "-c", missingScript, "--address", "127.0.0.1:0"}, nil, 2,
			[]string{missingScript + `: function "a" (functions[0].handler): program ./missing.sh: ` + filepath.Join(dir, "missing.sh") + " does not exist (in codedir " + dir + ")"}},
		{"exec program not in PATH", []string{"serve", "-c", notInPath, "--address", "127.0.0.1:0"}, nil, 2,
			[]string{notInPath + `: function "b" (functions[1].handler): program "no-such-program-oe-rt": not found in PATH`}},
		{"empty --config", []string{"serve", "-c", "", "--address", "127.0.0.1:0"}, nil, 2,
			[]string{"--config is empty: name a configuration file"}},
		{"a Go type would leak", []string{"serve", "-c", serverString, "--address", "127.0.0.1:0"}, nil, 2,
			[]string{serverString + `:1: server: want a mapping with the keys address,`, `got a string "x"`}},
		{"functions not a list", []string{"serve", "-c", functionsString, "--address", "127.0.0.1:0"}, nil, 2,
			[]string{functionsString + `:2: functions: want a list of mappings with the keys name, handler, codedir; got a string "echo"`}},
		{"--address nonsense", []string{"serve", "--address", "nonsense"}, nil, 2,
			[]string{`address "nonsense" (from --address): want host:port, such as 127.0.0.1:50051`}},
		{"--address port out of range", []string{"serve", "--address", ":99999"}, nil, 2,
			[]string{`address ":99999" (from --address): port 99999 is out of range: want 0 to 65535`}},
		{"--address a URL", []string{"serve", "--address", "http://127.0.0.1:50051"}, nil, 2,
			[]string{`address "http://127.0.0.1:50051" (from --address): a http:// URL is not an address`}},
		{"--address port a word", []string{"serve", "--address", "127.0.0.1:grpc"}, nil, 2,
			[]string{`address "127.0.0.1:grpc" (from --address): port "grpc": want a number from 0 to 65535`}},
		{"a bad address from the environment", []string{"serve"}, []string{"OPENEDGE_SERVICE_ADDRESS=localhost"}, 2,
			[]string{`address "localhost" (from $OPENEDGE_SERVICE_ADDRESS): want host:port`}},
		{"a bad address from the config", []string{"serve", "-c", badAddress}, nil, 2,
			[]string{`address "127.0.0.1:70000" (from server.address): port 70000 is out of range`}},
		{"missing config", []string{"serve", "-c", filepath.Join(dir, "nope.yml")}, nil, 2, []string{"config file " + filepath.Join(dir, "nope.yml") + " does not exist"}},
		{"bad log level", []string{"serve", "--address", "127.0.0.1:0", "--log-level", "loud"}, nil, 2, []string{`log level "loud"`}},
		{"bad log format", []string{"serve", "--address", "127.0.0.1:0", "--log-format", "xml"}, nil, 2, []string{`log format "xml"`}},
		{"unknown flag", []string{"serve", "--bogus"}, nil, 2, []string{"unknown flag: --bogus", "oe-rt serve --help"}},
		{"an argument", []string{"serve", "extra"}, nil, 2, []string{`unknown command "extra"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := oe(t, nil, tc.env, tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
			assert.Empty(t, r.stdout)
			assert.NotContains(t, r.stderr, "serve.", "no Go type names")
			assert.NotContains(t, r.stderr, "  does not exist", "no empty file name")
		})
	}
}

// TestServeAddressAndConfigSources: where the address, the name and the
// configuration come from, as the log reports them.
func TestServeAddressAndConfigSources(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()

	t.Run("the first variable wins", func(t *testing.T) {
		addr, err := launch.FreePort()
		require.NoError(t, err)
		// The lower variables name a port in use: serve would fail on it.
		p, _ := startServe(t, serveSpec{noAddress: true, addr: addr, env: []string{
			"BAETYL_SERVICE_INSTANCE_ADDRESS=" + addr,
			"OPENEDGE_SERVICE_INSTANCE_ADDRESS=" + busy.Addr().String(),
			"OPENEDGE_SERVICE_ADDRESS=" + busy.Addr().String(),
			"OPENEDGE_SERVICE_NAME=from-env",
		}})
		require.NoError(t, p.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, waitExit(t, p).Code)
		assert.Contains(t, p.Stderr(), "address_from=$BAETYL_SERVICE_INSTANCE_ADDRESS")
		assert.Contains(t, p.Stderr(), "name=from-env")
	})
	t.Run("--address beats the environment", func(t *testing.T) {
		p, _ := startServe(t, serveSpec{env: []string{"OPENEDGE_SERVICE_ADDRESS=" + busy.Addr().String()}})
		require.NoError(t, p.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, waitExit(t, p).Code)
		assert.Contains(t, p.Stderr(), "address_from=--address")
	})
	t.Run("the default config file and its address, name and functions", func(t *testing.T) {
		dir := t.TempDir()
		addr, err := launch.FreePort()
		require.NoError(t, err)
		writeFile(t, dir, "etc/openedge/service.yml", "name: from-config\nserver:\n  address: "+addr+"\nfunctions:\n  - name: hello\n    handler: echo\n", 0o644)
		p, _ := startServe(t, serveSpec{noAddress: true, addr: addr, dir: dir})
		c := dialT(t, addr)
		res, err := callT(t, c, "hello", "hi")
		require.NoError(t, err)
		assert.Equal(t, "hi", string(res.Payload))
		_, err = callT(t, c, "echo", "hi")
		assert.Equal(t, codes.NotFound, status.Code(err), "configured functions replace the fixtures")
		require.NoError(t, p.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, waitExit(t, p).Code)
		assert.Contains(t, p.Stderr(), "address_from=server.address")
		assert.Contains(t, p.Stderr(), "name=from-config")
	})
	t.Run("JSON log to a file", func(t *testing.T) {
		dir := t.TempDir()
		logFile := filepath.Join(dir, "serve.log")
		cfg := writeFile(t, dir, "s.yml", "logger:\n  path: "+logFile+"\n  format: json\n  level: debug\n", 0o644)
		p, addr := startServe(t, serveSpec{args: []string{"-c", cfg}})
		_, err := callT(t, dialT(t, addr), "fail", "")
		require.Error(t, err)
		require.NoError(t, p.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, waitExit(t, p).Code)
		b, err := os.ReadFile(logFile)
		require.NoError(t, err)
		var msgs []string
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var rec struct{ Msg string }
			require.NoError(t, json.Unmarshal([]byte(line), &rec), "a JSON log line: %s", line)
			msgs = append(msgs, rec.Msg)
		}
		assert.Subset(t, msgs, []string{"runtime starting", "runtime serving", "function failed", "runtime stopping", "runtime stopped"})
	})
}

func TestServeHealth(t *testing.T) {
	_, addr := startServe(t, serveSpec{})
	conn, err := client.Dial(addr, client.Options{})
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, h.Status)
}

// TestServeDefaultConfigPath: without --config, serve reads
// etc/baetyl/service.yml when a Baetyl master started it (any of its
// service variables is set), etc/openedge/service.yml otherwise — never
// the other one.
func TestServeDefaultConfigPath(t *testing.T) {
	layout := func(t *testing.T, files ...string) (dir string, addrs map[string]string) {
		dir, addrs = t.TempDir(), map[string]string{}
		for _, era := range files {
			addr, err := launch.FreePort()
			require.NoError(t, err)
			addrs[era] = addr
			writeFile(t, dir, "etc/"+era+"/service.yml", "name: from-"+era+"\nserver:\n  address: "+addr+"\n", 0o644)
		}
		return dir, addrs
	}
	for _, tc := range []struct {
		name string
		env  string // NAME=value, or ""
		want string // the era whose file is read
	}{
		{"no master variable", "", "openedge"},
		{"BAETYL_SERVICE_NAME", "BAETYL_SERVICE_NAME=function-echo", "baetyl"},
		{"BAETYL_SERVICE_INSTANCE_NAME", "BAETYL_SERVICE_INSTANCE_NAME=function-echo.echo.1", "baetyl"},
		{"an empty variable does not count", "BAETYL_SERVICE_NAME=", "openedge"},
		{"OpenEdge's variables are not Baetyl's", "OPENEDGE_SERVICE_NAME=x", "openedge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, addrs := layout(t, "openedge", "baetyl")
			var env []string
			if tc.env != "" {
				env = append(env, tc.env)
			}
			p, _ := startServe(t, serveSpec{noAddress: true, addr: addrs[tc.want], dir: dir, env: env})
			require.NoError(t, p.Signal(syscall.SIGTERM))
			assert.Equal(t, 0, waitExit(t, p).Code, p.Stderr())
			assert.Contains(t, p.Stderr(), "file=etc/"+tc.want+"/service.yml read=true")
			if tc.env == "OPENEDGE_SERVICE_NAME=x" {
				assert.Contains(t, p.Stderr(), "name=x")
			} else if !strings.HasPrefix(tc.env, "BAETYL_SERVICE_INSTANCE_NAME") {
				assert.Contains(t, p.Stderr(), "name=from-"+tc.want)
			}
		})
	}
	t.Run("the address variable alone, as the master sets it", func(t *testing.T) {
		dir, _ := layout(t, "openedge", "baetyl")
		addr, err := launch.FreePort()
		require.NoError(t, err)
		p, _ := startServe(t, serveSpec{noAddress: true, addr: addr, dir: dir, env: []string{"BAETYL_SERVICE_INSTANCE_ADDRESS=" + addr}})
		require.NoError(t, p.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, waitExit(t, p).Code, p.Stderr())
		assert.Contains(t, p.Stderr(), "file=etc/baetyl/service.yml read=true")
		assert.Contains(t, p.Stderr(), "name=from-baetyl")
	})
	t.Run("under Baetyl, OpenEdge's file is not read", func(t *testing.T) {
		dir, addrs := layout(t, "openedge")
		p, _ := startServe(t, serveSpec{noAddress: true, addr: addrs["openedge"], dir: dir,
			env: []string{"BAETYL_SERVICE_NAME=svc", "OPENEDGE_SERVICE_ADDRESS=" + addrs["openedge"]}})
		require.NoError(t, p.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, waitExit(t, p).Code, p.Stderr())
		assert.Contains(t, p.Stderr(), "file=etc/baetyl/service.yml read=false")
		assert.NotContains(t, p.Stderr(), "from-openedge")
	})
}

// TestServeBaetylLogger: Baetyl's own logger block — a relative path in a
// directory that does not exist yet, and the rotation keys — is accepted;
// the directory is made, the log written, and serve says that it does not
// rotate.
func TestServeBaetylLogger(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "etc/baetyl/service.yml", `logger:
  path: var/log/baetyl/service.log
  level: "debug"
  format: json
  age:
    max: 15
  size:
    max: 50
  backup:
    max: 15
`, 0o644)
	p, addr := startServe(t, serveSpec{dir: dir, env: []string{"BAETYL_SERVICE_NAME=svc"}})
	_, err := callT(t, dialT(t, addr), "echo", "hi")
	require.NoError(t, err)
	require.NoError(t, p.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, waitExit(t, p).Code, p.Stderr())
	assert.Empty(t, p.Stderr(), "the log goes to the file")
	b, err := os.ReadFile(filepath.Join(dir, "var/log/baetyl/service.log"))
	require.NoError(t, err)
	log := string(b)
	assert.Contains(t, log, `"msg":"runtime serving"`)
	assert.Contains(t, log, "not applied: serve appends to its log without rotating it")
}

// TestServeLogFileThatCannotBeOpened: a logger.path serve cannot open (a
// directory where a file should be; in a container, Baetyl's example
// var/log/baetyl/service.log under an unprivileged user) is reported on
// standard error, the log goes there, and serve serves and stops cleanly.
func TestServeLogFileThatCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "afile", "a file, not a directory", 0o644)
	writeFile(t, dir, "etc/baetyl/service.yml", "logger:\n  path: afile/service.log\n", 0o644)
	p, addr := startServe(t, serveSpec{dir: dir, env: []string{"BAETYL_SERVICE_NAME=svc"}})
	_, err := callT(t, dialT(t, addr), "echo", "hi")
	require.NoError(t, err, p.Stderr())
	require.NoError(t, p.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, waitExit(t, p).Code, p.Stderr())
	assert.Contains(t, p.Stderr(), "logging to stderr instead")
	assert.Contains(t, p.Stderr(), "logger.path afile/service.log")
	assert.Contains(t, p.Stderr(), "runtime serving")
}

// TestServeStartupErrorsOnStderr: with logger.path set, an error that
// stops serve from starting is still on standard error (and in the log).
func TestServeStartupErrorsOnStderr(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "logs", "serve.log")
	cfg := writeFile(t, dir, "s.yml", "logger:\n  path: "+logFile+"\n", 0o644)
	r := oe(t, nil, nil, "serve", "-c", cfg, "--address", busy.Addr().String())
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "listen on "+busy.Addr().String()+" (from --address): the address is already in use")
	b, err := os.ReadFile(logFile)
	require.NoError(t, err)
	assert.Contains(t, string(b), "runtime failed")

	r = oe(t, nil, nil, "serve", "-c", cfg)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "no address to listen on")
}
