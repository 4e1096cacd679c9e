//go:build unix

package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/serve/internal/rawh2"
)

// Some tests need serve in a process of its own: to measure its memory, or
// to lower its descriptor limit, which is a property of the whole process.
// They re-execute the test binary, go-plugin style: with helperEnv set,
// TestMain runs the server the way the oe-rt serve command does instead of
// the tests.
const (
	helperEnv       = "OE_RT_SERVE_TEST_HELPER"        // the config file
	helperNoFileEnv = "OE_RT_SERVE_TEST_HELPER_NOFILE" // RLIMIT_NOFILE to set first
	helperKeepEnv   = "OE_RT_SERVE_TEST_HELPER_KEEP"   // "1": no ReleaseMemory
)

func TestMain(m *testing.M) {
	if cfg, ok := os.LookupEnv(helperEnv); ok {
		os.Exit(serveHelper(cfg))
	}
	os.Exit(m.Run())
}

// serveHelper runs serve with the config file cfg on 127.0.0.1:0, logging
// JSON to stderr, and prints the address on stdout once it serves.
func serveHelper(cfgFile string) int {
	if v := os.Getenv(helperNoFileEnv); v != "" {
		n, _ := strconv.ParseUint(v, 10, 64)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			return 2
		}
	}
	cfg, err := LoadConfig(cfgFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err = Run(ctx, Options{
		Config:        cfg,
		Address:       "127.0.0.1:0",
		Logger:        slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		Ready:         func(a net.Addr) { fmt.Println(a.String()) },
		AdoptOrphans:  true,
		ReleaseMemory: os.Getenv(helperKeepEnv) != "1",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helper is a serve process started by startHelper.
type helper struct {
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
}

// startHelper starts serve in a process of its own with config (YAML) and
// extra environment, and waits, at most 15 s, for its address. The test's
// cleanup stops it.
func startHelper(tb testing.TB, config string, env ...string) *helper {
	tb.Helper()
	cfgFile := filepath.Join(tb.TempDir(), "service.yml")
	require.NoError(tb, os.WriteFile(cfgFile, []byte(config), 0o644))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, helperEnv+"="+cfgFile)...)
	h := &helper{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = h.stderr
	out, err := cmd.StdoutPipe()
	require.NoError(tb, err)
	require.NoError(tb, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			tb.Error("the serve process did not stop on SIGTERM")
		}
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case h.addr = <-addr:
	case <-time.After(15 * time.Second):
		tb.Fatalf("the serve process did not start; stderr:\n%s", h.stderr.String())
	}
	require.NotEmpty(tb, h.addr, "no address; stderr:\n%s", h.stderr.String())
	return h
}

// memory reads a /proc/PID/status field in bytes (VmRSS, VmHWM).
func (h *helper) memory(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	require.NoError(tb, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(tb, err)
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/%d/status", field, h.cmd.Process.Pid)
	return 0
}

// TestIdleConnectionsUnderLowFileLimit: serve with 64 descriptors and
// 100 connections that say nothing (some not even the HTTP/2 preface).
// Accepting fails (EMFILE): serve says so once, with the limit and the
// connections open; the idle connections are closed after
// server.idle.timeout, and a real call gets through.
func TestIdleConnectionsUnderLowFileLimit(t *testing.T) {
	h := startHelper(t, "server:\n  idle:\n    timeout: 1s\n", helperNoFileEnv+"=64")
	var idle []net.Conn
	for range 60 {
		c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	var established []*rawh2.Conn
	for range 40 {
		c, err := rawh2.Dial(h.addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		established = append(established, c)
	}
	require.Eventually(t, func() bool { return strings.Contains(h.stderr.String(), "cannot accept connections") },
		15*time.Second, 10*time.Millisecond, "no accept error logged; stderr:\n%s", h.stderr.String())

	c := client.New(connect(t, h.addr, client.Options{}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Call(ctx, fields("echo", []byte("let me in")))
	require.NoError(t, err, "stderr:\n%s", h.stderr.String())
	assert.Equal(t, "let me in", string(res.Payload))

	// The first idle connections were accepted, and closed by serve.
	_ = idle[0].SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.Copy(io.Discard, idle[0])
	assert.NoError(t, err, "serve closes a connection that sends nothing (EOF)")

	for i, c := range established {
		select {
		case <-c.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("idle HTTP/2 connection %d was not closed", i)
		}
	}
	require.Eventually(t, func() bool { return strings.Contains(h.stderr.String(), "accepting connections again") },
		15*time.Second, 10*time.Millisecond)
	// Once per burst: an error line, then nothing until accepting works
	// again (the connections that waited may make a second burst).
	logs := h.stderr.String()
	failing := false
	for _, line := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(line, "cannot accept connections"):
			assert.False(t, failing, "a second error line in one burst:\n%s", logs)
			failing = true
			assert.Contains(t, line, `"open_file_limit":64`)
			assert.Contains(t, line, "too many open files")
			assert.Regexp(t, `"open_connections":[1-9]`, line)
		case strings.Contains(line, "accepting connections again"):
			assert.True(t, failing, "accepting again without a burst:\n%s", logs)
			assert.Regexp(t, `"failed_accepts":[1-9]`, line)
			failing = false
		}
	}
}

// zeroWindowAttack opens one connection with a zero window and sends calls
// echo calls of size bytes each, and waits until serve has answered (or
// refused) each of them.
func zeroWindowAttack(tb testing.TB, addr string, calls, size int) *rawh2.Conn {
	tb.Helper()
	c, err := rawh2.Dial(addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	require.NoError(tb, err)
	tb.Cleanup(func() { c.Close() })
	req := echoRequest(tb, make([]byte, size))
	for range calls {
		_, err := c.Call(addr, callPath, req, time.Minute)
		require.NoError(tb, err)
	}
	require.True(tb, c.Wait(time.Minute, func(s map[uint32]rawh2.Stream) bool {
		n := 0
		for _, st := range s {
			if st.Headers > 0 || st.Reset {
				n++
			}
		}
		return n == calls
	}), "serve did not answer every stream")
	return c
}

// TestZeroWindowMemory: the zero-window attack with 300 calls of 1 MB
// keeps serve under 128 MiB, with the default configuration (the stall
// limit set long, so that nothing is cut while it is measured).
func TestZeroWindowMemory(t *testing.T) {
	h := startHelper(t, "server:\n  call:\n    timeout: 10m\n")
	idle := h.memory(t, "VmRSS")
	c := zeroWindowAttack(t, h.addr, 300, 1<<20)
	answered := 0
	for _, s := range c.Streams() {
		if s.Headers > 0 {
			answered++
		}
	}
	peak := h.memory(t, "VmHWM")
	t.Logf("idle RSS %.1f MiB, peak %.1f MiB, %d streams held", mib(idle), mib(peak), answered)
	assert.Equal(t, DefaultConcurrentMax, answered, "serve holds server.concurrent.max streams, refuses the rest")
	if raceEnabled {
		t.Skip("memory is not measured under the race detector")
	}
	assert.Less(t, peak, int64(128<<20), "peak RSS under the zero-window attack")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// echoLoad makes calls with payload from conns connections, callers
// goroutines each, for d.
func echoLoad(tb testing.TB, addr string, conns, callers, payload int, d time.Duration) (calls int) {
	tb.Helper()
	p := make([]byte, payload)
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for range conns {
		conn, err := client.Dial(addr, client.Options{})
		require.NoError(tb, err)
		c := client.New(conn, nil)
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				for time.Now().Before(stop) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_, err := c.Call(ctx, &client.Message{FunctionName: "echo", Payload: p})
					cancel()
					if err != nil {
						tb.Errorf("call: %v", err)
						return
					}
					n++
				}
				mu.Lock()
				calls += n
				mu.Unlock()
			}()
		}
		defer conn.Close()
	}
	wg.Wait()
	return calls
}

// BenchmarkMemoryAfterLoad measures serve's RSS, in a process of its own:
// just started (cold), idle after one call (idle), at the end of 10 s of
// 64 KiB echoes from 8 connections with 8 callers each (loaded; peak is
// the high-water mark), and 3 s after the load ended and the connections
// closed (after); with and without ReleaseMemory. One iteration:
//
//	go test -run '^$' -bench MemoryAfterLoad -benchtime 1x ./serve
func BenchmarkMemoryAfterLoad(b *testing.B) {
	for _, mode := range []struct {
		name string
		env  []string
	}{{"release", nil}, {"keep", []string{helperKeepEnv + "=1"}}} {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				h := startHelper(b, "{}\n", mode.env...)
				cold := h.memory(b, "VmRSS")
				echoLoad(b, h.addr, 1, 1, 64<<10, 100*time.Millisecond)
				time.Sleep(3 * time.Second)
				idle := h.memory(b, "VmRSS")
				b.ReportMetric(mib(cold), "cold-MiB")
				calls := echoLoad(b, h.addr, 8, 8, 64<<10, 10*time.Second)
				loaded := h.memory(b, "VmRSS")
				time.Sleep(3 * time.Second)
				after := h.memory(b, "VmRSS")
				b.ReportMetric(mib(idle), "idle-MiB")
				b.ReportMetric(mib(loaded), "loaded-MiB")
				b.ReportMetric(mib(h.memory(b, "VmHWM")), "peak-MiB")
				b.ReportMetric(mib(after), "after-MiB")
				b.ReportMetric(float64(after)/float64(idle), "after/idle")
				b.ReportMetric(float64(calls), "calls")
			}
		})
	}
}

// BenchmarkZeroWindowMemory measures serve's peak RSS, in a process of its
// own, under the zero-window attack: 300 calls of 1 MB on one connection
// that never opens its window. One iteration:
//
//	go test -run '^$' -bench ZeroWindowMemory -benchtime 1x ./serve
func BenchmarkZeroWindowMemory(b *testing.B) {
	for range b.N {
		h := startHelper(b, "server:\n  call:\n    timeout: 10m\n")
		idle := h.memory(b, "VmRSS")
		zeroWindowAttack(b, h.addr, 300, 1<<20)
		b.ReportMetric(mib(idle), "idle-MiB")
		b.ReportMetric(mib(h.memory(b, "VmHWM")), "peak-MiB")
		b.ReportMetric(mib(h.memory(b, "VmRSS")), "held-MiB")
	}
}
