package runtimeproc

// The test binary doubles as the runtimes these tests start: with
// OE_RT_RUNTIMEPROC_MODE set it becomes one that behaves as the mode says
// (the way go-plugin's tests re-execute themselves), before the tests run.

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
)

const modeEnv = "OE_RT_RUNTIMEPROC_MODE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeEnv); mode != "" {
		os.Exit(runtimeMain(mode))
	}
	_ = launch.EnableSubreaper()
	os.Exit(m.Run())
}

// runtimeMain is a runtime that behaves as mode says.
func runtimeMain(mode string) int {
	addr, _ := convention.Lookup(convention.AddressEnv, nil)
	name, _ := convention.Lookup(convention.NameEnv, nil)
	cwd, _ := os.Getwd()
	fmt.Printf("addr=%s name=%s cwd=%s master=%s\n", addr, name, cwd, os.Getenv("OPENEDGE_MASTER_API")+os.Getenv("BAETYL_MASTER_API_ADDRESS"))
	switch mode {
	case "serve":
	case "slow":
		time.Sleep(300 * time.Millisecond) // then listens
	case "exit":
		fmt.Fprintln(os.Stderr, "ImportError: no module named grpc")
		return 3
	case "stop":
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	case "elsewhere":
		addr = "127.0.0.1:0" // a port of its own choosing
	case "silent":
		select {} // neither listens nor exits
	case "tcp":
		// Accepts connections and never answers: no HTTP/2 handshake.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var held []net.Conn // held, not closed (nor left to the GC's finalizers)
		for {
			c, err := l.Accept()
			if err != nil {
				return 1
			}
			held = append(held, c)
		}
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		return 2
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := grpc.NewServer() // no service: the handshake is all WaitReady needs
	if mode != "ignore-term" {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			s.Stop()
		}()
	}
	if err := s.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// start starts the test binary as a runtime in mode, stopped when the test
// ends.
func start(t *testing.T, mode string, o Options) *Runtime {
	t.Helper()
	o.Command = append([]string{os.Args[0]}, o.Command...)
	o.Env = append(o.Env, modeEnv+"="+mode)
	r, err := Start(o)
	if err != nil {
		t.Fatalf("start %s: %v", mode, err)
	}
	t.Cleanup(func() { r.Proc.Kill() })
	return r
}

// assertNoChildren checks that no process the test started is left.
func assertNoChildren(t *testing.T) {
	t.Helper()
	for _, p := range launch.Tree(os.Getpid())[1:] {
		if p.State != 'Z' {
			t.Errorf("process %d outlived the test", p.Pid)
		}
	}
}
