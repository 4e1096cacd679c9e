package conformance_test

// The test binary doubles as the runtimes the suite is tested against: with
// OE_RT_FAKE set it becomes a runtime that breaks exactly one rule, the way
// go-plugin's tests re-execute themselves as misbehaving plugins. Its calls
// are served by the reference runtime's own fixture functions.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/proto/openedge"
	"github.com/oe-rt/oe-rt/serve"
)

func fakeMain(mode string) int {
	fmt.Fprintln(os.Stderr, "fake runtime, mode", mode)
	addr := os.Getenv("OPENEDGE_SERVICE_ADDRESS")
	switch mode {
	case "no-listen":
		time.Sleep(time.Minute)
		return 0
	case "slow-start":
		time.Sleep(1500 * time.Millisecond)
	case "exit-early":
		go func() { time.Sleep(300 * time.Millisecond); os.Exit(0) }()
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
		for i := 0; i < 30; i++ {
			go func() { runtime.LockOSThread(); time.Sleep(time.Hour) }()
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
	openedge.RegisterFunctionServer(s, &fake{mode: mode})
	go s.Serve(lis)

	sig := make(chan os.Signal, 1)
	if mode != "term-default" && mode != "ignore-term" {
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	}
	<-sig
	switch mode {
	case "drop", "sleep-instant-drop":
		return 0
	case "exit1":
		s.GracefulStop()
		return 1
	}
	s.GracefulStop()
	return 0
}

var ballast []byte

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

// hugeReply is what the "huge-reply" runtime answers every echo with.
var hugeReply = bytes.Repeat([]byte{'x'}, 100<<20)

type fake struct {
	openedge.UnimplementedFunctionServer
	mode  string
	calls atomic.Int64 // every call
	seq   atomic.Int64 // echo calls, for "sequence"
	mu    sync.Mutex
}

func (f *fake) Call(ctx context.Context, m *openedge.FunctionMessage) (*openedge.FunctionMessage, error) {
	n := f.calls.Add(1)
	_, known := serve.Fixtures[m.FunctionName]
	switch f.mode {
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
	case "exit-after-first":
		if n == 1 {
			go func() { time.Sleep(20 * time.Millisecond); os.Exit(0) }()
		}
	case "sleep-instant-drop":
		if m.FunctionName == "sleep" {
			return m, nil // returns at once
		}
	case "huge-reply":
		if m.FunctionName == "echo" {
			m.Payload = hugeReply
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
	case f.mode == "alternate-bad" && m.FunctionName == "echo" && len(out) > 0 && out[0] == '{':
		out = []byte(`{"changed":true}`)
	case f.mode == "large" && m.FunctionName == "echo" && len(out) > 2<<20:
		out = out[:2<<20]
	case f.mode == "context" && m.FunctionName == "context":
		out = bytes.Replace(out, []byte("oe-rt/conform/context"), []byte("wrong"), 1)
	case f.mode == "none" && m.FunctionName == "none":
		out = []byte("null")
	}
	m.Payload = out
	return m, nil
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
