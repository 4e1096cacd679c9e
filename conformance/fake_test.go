package conformance_test

// The test binary doubles as the runtimes the suite is tested against: with
// OE_RT_FAKE set it becomes a runtime that breaks exactly one rule, the way
// go-plugin's tests re-execute themselves as misbehaving plugins. Its calls
// are served by the reference runtime's own fixture functions.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/proto/openedge"
	"github.com/oe-rt/oe-rt/serve"
)

func fakeMain(mode string) int {
	fmt.Fprintln(os.Stderr, "fake runtime, mode", mode)
	addr, _ := convention.Lookup(convention.AddressEnv, nil)
	switch mode {
	case "only-osa":
		// Reads only the original name, as OpenEdge 0.1.2's runtimes did.
		addr = os.Getenv("OPENEDGE_SERVICE_ADDRESS")
	case "only-osa-silent":
		// Reads only the original name and, without it, waits for ever
		// without listening or exiting.
		addr = os.Getenv("OPENEDGE_SERVICE_ADDRESS")
		if addr == "" {
			select {}
		}
	case "only-baetyl":
		addr = os.Getenv("BAETYL_SERVICE_INSTANCE_ADDRESS")
	case "only-baetyl-exit":
		// Reads only Baetyl's name; without it, says why and exits 1.
		addr = os.Getenv("BAETYL_SERVICE_INSTANCE_ADDRESS")
		if addr == "" {
			fmt.Fprintln(os.Stderr, "fatal: BAETYL_SERVICE_INSTANCE_ADDRESS is not set")
			return 1
		}
	case "config", "config-openedge-only":
		// Reads its configuration from -c, else from the default path:
		// "config" follows the templates' rule (etc/baetyl/service.yml
		// under a Baetyl master), "config-openedge-only" always looks in
		// etc/openedge/service.yml.
		path := configArg()
		if path == "" {
			path = "etc/openedge/service.yml"
			if mode == "config" && (os.Getenv("BAETYL_SERVICE_INSTANCE_ADDRESS") != "" ||
				os.Getenv("BAETYL_SERVICE_INSTANCE_NAME") != "" || os.Getenv("BAETYL_SERVICE_NAME") != "") {
				path = "etc/baetyl/service.yml"
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load config:", err)
			return 2
		}
		if !bytes.Contains(b, []byte("oe-rt-fake-config")) {
			fmt.Fprintf(os.Stderr, "%s is not the configuration conform was given\n", path)
			return 2
		}
		// Everything else of --dir is there too.
		for _, want := range strings.Split(os.Getenv("OE_RT_FAKE_NEEDS"), ",") {
			if _, err := os.Stat(want); want != "" && err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
		for _, not := range strings.Split(os.Getenv("OE_RT_FAKE_HIDDEN"), ",") {
			if _, err := os.Stat(not); not != "" && err == nil {
				fmt.Fprintln(os.Stderr, not, "is visible")
				return 2
			}
		}
	case "forms-strict":
		if code := formsStrict(); code != 0 {
			return code
		}
	case "api-exit", "api-ok":
		// Asks the master API for something, as a service would; an
		// instance has no token, so the master refuses.
		if err := askMaster(); err != nil {
			fmt.Fprintln(os.Stderr, "master API:", err)
			if mode == "api-exit" {
				go func() { time.Sleep(200 * time.Millisecond); os.Exit(1) }()
			}
		}
	case "env":
		// Writes what it was started with to $OE_RT_FAKE_OUT, whole or
		// not at all (a temporary file renamed): a test that waits for the
		// file may stop the run, and so this runtime, as soon as it is
		// there (TestMasterDirectoryRemovedOnInterrupt once read it empty).
		cwd, _ := os.Getwd()
		b, _ := json.Marshal(startedWith{Argv: os.Args, Cwd: cwd, Env: os.Environ()})
		out := os.Getenv("OE_RT_FAKE_OUT")
		tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid()) // one per instance
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		if err := os.Rename(tmp, out); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	case "no-listen":
		time.Sleep(time.Minute)
		return 0
	case "slow-start":
		time.Sleep(1500 * time.Millisecond)
	case "exit-early":
		// Exits 300 ms after its first call (below): it listened and
		// answered, however long the machine made its start.
	case "term-default":
		// No handler: SIGTERM's default action kills the process.
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	case "orphan":
		c := exec.Command("sleep", "60")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		_ = c.Start()
	case "memory":
		// Touch one byte a page: resident, and fast even under -race.
		ballast = make([]byte, 80<<20)
		for i := 0; i < len(ballast); i += 4096 {
			ballast[i] = 1
		}
	case "threads":
		// Every thread is up before the runtime listens, so that no check
		// can look before they are.
		var up sync.WaitGroup
		for i := 0; i < 30; i++ {
			up.Add(1)
			go func() { runtime.LockOSThread(); up.Done(); time.Sleep(time.Hour) }()
		}
		up.Wait()
	case "threads-at-start":
		// 40 threads before it listens: under pids.max 20 it cannot start.
		for i := 0; i < 40; i++ {
			go func() { runtime.LockOSThread(); time.Sleep(time.Hour) }()
		}
		time.Sleep(300 * time.Millisecond)
	case "file-pages":
		// 64 MiB of a file mapped and read: RSS, but file-backed pages,
		// which a memory limit reclaims.
		if err := mapFile(64 << 20); err != nil {
			fmt.Fprintln(os.Stderr, "file-pages:", err)
			return 1
		}
	case "flood":
		go func() {
			line := bytes.Repeat([]byte("flood "), 1000)
			for {
				os.Stderr.Write(line)
			}
		}()
	case "exit-at-once":
		return 3
	case "busy":
		for { // load for the calibration tests: one busy CPU
		}
	case "burn-start":
		d, _ := time.ParseDuration(os.Getenv("OE_RT_FAKE_DELAY"))
		burnCPU(d)
	case "alternate":
		// Every other run breaks echo.json and echo.empty: the main
		// instance (number 1 of its run) counts the runs in a file.
		if strings.HasSuffix(os.Getenv("OPENEDGE_SERVICE_NAME"), ".1") {
			file := os.Getenv("OE_RT_FAKE_FILE")
			b, _ := os.ReadFile(file)
			n, _ := strconv.Atoi(string(b))
			n++
			if err := os.WriteFile(file, []byte(strconv.Itoa(n)), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if n%2 == 1 {
				mode = "alternate-bad"
			}
		}
	case "slow-start-var":
		d, _ := time.ParseDuration(os.Getenv("OE_RT_FAKE_DELAY"))
		time.Sleep(d)
	case "slow-start-once":
		// Only the run's first instance is slow to start, as a runtime
		// that writes its caches on its first start.
		if strings.HasSuffix(os.Getenv("OPENEDGE_SERVICE_NAME"), ".1") {
			d, _ := time.ParseDuration(os.Getenv("OE_RT_FAKE_DELAY"))
			time.Sleep(d)
		}
	case "stderr-holder":
		// A background child keeps the runtime's stderr open after the
		// runtime exits (in the same process group, so that the
		// launcher's cleanup ends it).
		c := exec.Command("sleep", "30")
		c.Stderr = os.Stderr
		_ = c.Start()
	}
	if mode == "wildcard" {
		_, port, _ := net.SplitHostPort(addr)
		addr = "0.0.0.0:" + port
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mode == "extra-port" {
		extra, _ := net.Listen("tcp", "127.0.0.1:0")
		defer extra.Close()
	}
	max := 4 << 20
	if mode == "big-limit" {
		max = 64 << 20
	}
	if mode == "huge-reply" {
		max = 128 << 20
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(max), grpc.MaxSendMsgSize(max)}
	if mode == "malformed-ok" {
		opts = append(opts, grpc.ForceServerCodecV2(lenientCodec{}))
	}
	if mode == "unimpl-ok" {
		opts = append(opts, grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error { return nil }))
	}
	s := grpc.NewServer(opts...)
	f := &fake{mode: mode, term: make(chan struct{})}
	openedge.RegisterFunctionServer(s, f)
	go s.Serve(lis)

	sig := make(chan os.Signal, 1)
	if mode != "term-default" && mode != "ignore-term" {
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	}
	<-sig
	close(f.term)
	switch mode {
	case "drop", "sleep-instant-drop":
		return 0
	case "group-term":
		// Passes SIGTERM on to its whole process group, as a start
		// script's kill -TERM 0 does.
		signal.Reset(syscall.SIGTERM)
		signal.Ignore(syscall.SIGTERM)
		_ = syscall.Kill(0, syscall.SIGTERM)
	case "exit1":
		s.GracefulStop()
		return 1
	case "drain-lost":
		// GOAWAY to the caller, then wait for the call in flight, which
		// ends the process without its answer.
		s.GracefulStop()
		return 0
	case "drain-reraise":
		// Drains, then ends by its own SIGTERM, default action.
		s.GracefulStop()
		signal.Reset(syscall.SIGTERM)
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(time.Second)
		return 0
	}
	s.GracefulStop()
	return 0
}

var (
	ballast  []byte
	ballasts [][]byte
	leaked   []*os.File
	mapped   []byte
	pageSum  int
)

// mapFile maps a file of n bytes and reads every page of it.
func mapFile(n int) error {
	f, err := os.CreateTemp("", "oe-rt-fake-pages-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// Written a chunk at a time: one n-byte buffer would be n bytes of
	// anonymous memory of the fake's own, counted against the bound.
	chunk := make([]byte, 64<<10)
	for w := 0; w < n; w += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			return err
		}
	}
	mapped, err = syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	for i := 0; i < n; i += 4096 {
		pageSum += int(mapped[i])
	}
	return nil
}

// hugeReply is what the "huge-reply" runtime answers every echo with
// (made only in that mode: other fakes stay small, for the memory checks).
var hugeReply = sync.OnceValue(func() []byte { return bytes.Repeat([]byte{'x'}, 100<<20) })

// referenceArg makes the test binary conform's reference (the tests give
// it in Config.Reference); "delay=D" after it makes a reference that
// takes D to start, as on a machine too slow to judge.
const referenceArg = "oe-rt-test-reference"

func referenceMain(args []string) int {
	for _, a := range args {
		if d, ok := strings.CutPrefix(a, "delay="); ok {
			t, _ := time.ParseDuration(d)
			time.Sleep(t)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := conformance.ServeReference(ctx, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// burnCPU spins on the calling thread until it has used d of CPU.
func burnCPU(d time.Duration) {
	x := 0
	for {
		for i := 0; i < 1e6; i++ {
			x += i
		}
		var ru syscall.Rusage
		if err := syscall.Getrusage(rusageThread, &ru); err != nil {
			return
		}
		if time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) >= d {
			return
		}
	}
}

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1

func init() {
	// The CPU-bound start burns on the main thread, as a Node or Python
	// runtime starts: init locks the main goroutine to it.
	if os.Getenv("OE_RT_FAKE") == "burn-start" {
		runtime.LockOSThread()
	}
}

type fake struct {
	openedge.UnimplementedFunctionServer
	mode  string
	calls atomic.Int64 // every call
	seq   atomic.Int64 // echo calls, for "sequence"
	mu    sync.Mutex
	term  chan struct{} // closed when SIGTERM arrives
}

// quietLie is how the "quiet-liar" runtime breaks the rules only on calls
// no check judges by itself: a fresh message from none, UTF-8 text echoed
// as a JSON string, and the load's sleeps (of 100 and 10 ms) answered at
// once.
func quietLie(m *openedge.FunctionMessage) (*openedge.FunctionMessage, bool) {
	switch {
	case m.FunctionName == "none":
		return &openedge.FunctionMessage{}, true
	case m.FunctionName == "echo" && len(m.Payload) > 0 && utf8.Valid(m.Payload) && !json.Valid(m.Payload):
		q, _ := json.Marshal(string(m.Payload))
		m.Payload = q
		return m, true
	case m.FunctionName == "sleep" && (bytes.Equal(m.Payload, []byte(`{"ms":100}`)) || bytes.Equal(m.Payload, []byte(`{"ms":10}`))):
		return m, true
	}
	return nil, false
}

func (f *fake) Call(ctx context.Context, m *openedge.FunctionMessage) (*openedge.FunctionMessage, error) {
	n := f.calls.Add(1)
	_, known := serve.Fixtures[m.FunctionName]
	switch f.mode {
	case "exit-early":
		if n == 1 {
			go func() { time.Sleep(300 * time.Millisecond); os.Exit(0) }()
		}
	case "serial", "deadline":
		f.mu.Lock()
		defer f.mu.Unlock()
	case "crash-unknown":
		if !known {
			os.Exit(3)
		}
	case "crash-fail", "crash-sleep":
		if m.FunctionName == strings.TrimPrefix(f.mode, "crash-") {
			fmt.Fprintln(os.Stderr, "crashing in", m.FunctionName)
			os.Exit(3)
		}
	case "notfound-all":
		return nil, status.Errorf(codes.NotFound, "nothing is served here")
	case "unavailable-all":
		if known {
			return nil, status.Errorf(codes.Unavailable, "the backend of %s is down", m.FunctionName)
		}
	case "hang-after-10":
		if n > 10 {
			select {} // never answers, whatever the caller does
		}
	case "stop-after-20":
		if n > 20 {
			_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		}
	case "slow-300":
		time.Sleep(300 * time.Millisecond)
	case "starved-json":
		// A JSON echo costs 300 ms of CPU: on a CPU it shares with busy
		// loops, seconds of the wall clock (TestStarvedRuntimeIsNotHung).
		if m.FunctionName == "echo" && bytes.HasPrefix(m.Payload, []byte("{")) {
			runtime.LockOSThread()
			var ru syscall.Rusage
			_ = syscall.Getrusage(rusageThread, &ru)
			burnCPU(time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) + 300*time.Millisecond)
			runtime.UnlockOSThread()
		}
	case "oom-on-large":
		// A large echo makes it allocate without end: under a memory limit
		// the OOM killer ends it while the call is in flight.
		if m.FunctionName == "echo" && len(m.Payload) > 1<<20 {
			for {
				b := make([]byte, 1<<20)
				for i := 0; i < len(b); i += 4096 {
					b[i] = 1
				}
				ballasts = append(ballasts, b)
			}
		}
	case "exit-after-first":
		if n == 1 {
			go func() { time.Sleep(20 * time.Millisecond); os.Exit(0) }()
		}
	case "sleep-instant-drop":
		if m.FunctionName == "sleep" {
			return m, nil // returns at once
		}
	case "leaky":
		// Every call leaves an open file and 128 KiB of memory behind,
		// every 5th a zombie; after 300 calls every call fails.
		if n > 300 {
			fmt.Fprintf(os.Stderr, "call %d: out of handles\n", n)
			return nil, status.Errorf(codes.Internal, "out of handles after %d calls", n-1)
		}
		if fh, err := os.Open(os.DevNull); err == nil {
			leaked = append(leaked, fh)
		}
		b := make([]byte, 128<<10)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		ballasts = append(ballasts, b)
		if n%5 == 0 {
			_ = exec.Command("true").Start() // never waited for
		}
	case "bytes-result":
		// Every function returns a dict holding bytes, which the runtime
		// cannot encode: one cause for every call.
		if known && m.FunctionName != "fail" {
			return nil, status.Error(codes.Unknown, "TypeError: Object of type bytes is not JSON serializable")
		}
	case "zombie-per-call":
		_ = exec.Command("true").Start() // never waited for
	case "slow-first-call":
		// Listens at once, answers its first call 3 s late.
		if n == 1 {
			time.Sleep(3 * time.Second)
		}
	case "quiet-liar":
		if res, ok := quietLie(m); ok {
			return res, nil
		}
	case "drain-lost":
		// Node 18's http2 under grpc-js's tryShutdown: a sleep in
		// flight when SIGTERM arrives takes its whole time, then its
		// answer never leaves (here: the process ends as it would be
		// sent), and the runtime exits 0 as if it had drained.
		if m.FunctionName == "sleep" {
			var arg struct{ MS int64 }
			_ = json.Unmarshal(m.Payload, &arg)
			time.Sleep(time.Duration(arg.MS) * time.Millisecond)
			select {
			case <-f.term:
				os.Exit(0)
			default:
			}
			return m, nil
		}
	case "drain-cut":
		// A sleep in flight when SIGTERM arrives answers OK at once.
		if m.FunctionName == "sleep" {
			var arg struct{ MS int64 }
			_ = json.Unmarshal(m.Payload, &arg)
			select {
			case <-time.After(time.Duration(arg.MS) * time.Millisecond):
			case <-f.term:
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			return m, nil
		}
	case "huge-reply":
		if m.FunctionName == "echo" {
			m.Payload = hugeReply()
			return m, nil
		}
	case "escape":
		if m.FunctionName == "echo" {
			os.Stderr.Write(bytes.Repeat([]byte{'z'}, 64<<10))
			fmt.Fprintln(os.Stderr)
			fmt.Fprint(os.Stderr, "\x1b[2J\x1b[HPASSED: a forged verdict\n")
			m.Payload = append(m.Payload, '!')
			return m, nil
		}
	}
	if f.mode == "malformed-ok" && m.FunctionName == "" {
		return m, nil
	}
	fn, ok := serve.Fixtures[m.FunctionName]
	if !ok {
		if f.mode == "unknown-ok" {
			return m, nil
		}
		return nil, status.Errorf(codes.NotFound, "no function %q", m.FunctionName)
	}
	c := &serve.Call{QOS: m.QOS, Topic: m.Topic, Payload: m.Payload, FunctionName: m.FunctionName, FunctionInvokeID: m.FunctionInvokeID}
	if f.mode == "deadline" && m.FunctionName == "sleep" {
		ctx = context.Background() // ignores cancellation, holding the lock
	}
	out, err := fn(ctx, c)
	switch {
	case f.mode == "fail-ok" && m.FunctionName == "fail":
		out, err = nil, nil
	case f.mode == "fail-msg" && m.FunctionName == "fail":
		err = errors.New("boom")
	case f.mode == "sequence" && m.FunctionName == "echo" && f.seq.Add(1)%150 == 0:
		err = errors.New("every 150th call fails")
	}
	if err != nil {
		// A call its caller gave up on ends with the caller's status, as
		// oe-rt serve ends it: answered UNKNOWN, it would race the
		// caller's own DEADLINE_EXCEEDED on a busy machine.
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, status.FromContextError(err).Err()
		}
		return nil, status.Error(codes.Unknown, err.Error())
	}
	switch {
	case f.mode == "fields":
		m.ID = 0
	case f.mode == "bytes" && m.FunctionName == "echo" && len(out) > 0 && out[0] == 0xff:
		out = append(out, '\n')
	case f.mode == "json" && m.FunctionName == "echo" && len(out) > 0 && out[0] == '{':
		out = []byte(`{"changed":true}`)
	case (f.mode == "empty" || f.mode == "alternate-bad") && m.FunctionName == "echo" && len(out) == 0:
		out = []byte("null")
	case f.mode == "empty-object" && m.FunctionName == "echo" && len(out) == 0:
		out = []byte("{}") // as Baetyl's runtimes, whatever the era
	case f.mode == "alternate-bad" && m.FunctionName == "echo" && len(out) > 0 && out[0] == '{':
		out = []byte(`{"changed":true}`)
	case f.mode == "large" && m.FunctionName == "echo" && len(out) > 2<<20:
		out = out[:2<<20]
	case f.mode == "context" && m.FunctionName == "context":
		out = bytes.Replace(out, []byte("oe-rt/conform/context"), []byte("wrong"), 1)
	case f.mode == "none" && m.FunctionName == "none":
		out = []byte("null")
	case f.mode == "drop-mid" && m.FunctionName == "echo" && len(out) >= 100<<10 && len(out) <= 900<<10:
		// Drops the middle byte of a payload of 100–900 KiB.
		out = append(out[:len(out)/2:len(out)/2], out[len(out)/2+1:]...)
	case f.mode == "json-4k" && m.FunctionName == "echo" && len(out) > 4<<10 && json.Valid(out):
		out = out[:4<<10] // reads JSON into a 4 KiB buffer
	case f.mode == "quote-text" && m.FunctionName == "echo" && isText(out):
		out, _ = json.Marshal(string(out)) // returns the text as a JSON string
	case f.mode == "round-numbers" && m.FunctionName == "echo" && len(out) > 0 && json.Valid(out):
		// Decodes JSON as JSON.parse does: every number a float64.
		var v any
		_ = json.Unmarshal(out, &v)
		out, _ = json.Marshal(v)
	}
	m.Payload = out
	return m, nil
}

// isText: what the "quote-text" runtime takes for text (and returns as a
// JSON string): UTF-8 of at least 5 bytes, not JSON, holding a letter.
func isText(b []byte) bool {
	return len(b) >= 5 && utf8.Valid(b) && !json.Valid(b) && bytes.ContainsAny(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
}

// lenientCodec accepts any bytes: what it cannot parse becomes an empty
// message.
type lenientCodec struct{}

func (lenientCodec) Name() string { return "proto" }

func (lenientCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	_ = proto.Unmarshal(data.Materialize(), v.(proto.Message))
	return nil
}

// configArg returns the value of -c in the fake's arguments, or "".
func configArg() string {
	for i, a := range os.Args[1:] {
		if a == "-c" && i+2 < len(os.Args) {
			return os.Args[i+2]
		}
	}
	return ""
}

// askMaster makes a request to the master API at the address the
// environment gives (unix://PATH, relative to the working directory or
// absolute) and returns an error unless it was answered 200.
func askMaster() error {
	addr := os.Getenv("BAETYL_MASTER_API_ADDRESS")
	if addr == "" {
		addr = os.Getenv("OPENEDGE_MASTER_API")
	}
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		return fmt.Errorf("no unix master API address in the environment (%q)", addr)
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	req, _ := http.NewRequest("GET", "http://baetyl/v1/system/inspect", nil)
	req.Header.Set("x-openedge-username", os.Getenv("BAETYL_SERVICE_NAME"))
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// startedWith is what the "env" runtime saw.
type startedWith struct {
	Argv []string
	Cwd  string
	Env  []string
}
