//go:build unix

// Package servetest is the one fake runtime of oe-rt's tests: a test binary
// that re-executes itself (the way go-plugin's tests do) becomes the
// reference runtime misbehaving in one chosen way. A package's TestMain
// calls Main first:
//
//	func TestMain(m *testing.M) {
//		servetest.Main(m, launch.EnableSubreaper)
//	}
//
// and a test starts os.Args[0] with Env(mode) in its environment. It serves
// the reference runtime's fixtures on the address the convention's
// variables give (the conformance package's fakes, which break the
// convention in far more ways, live beside its tests).
package servetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/serve"
)

// ModeEnv selects the fake runtime's behaviour.
const ModeEnv = "OE_RT_TEST_RUNTIME"

// Env is the environment entry that makes the test binary the fake runtime
// in mode.
func Env(mode string) string { return ModeEnv + "=" + mode }

// Main runs the fake runtime and exits when ModeEnv is set; otherwise it
// calls setup (when not nil) and runs the tests.
func Main(m *testing.M, setup func() error) {
	if mode := os.Getenv(ModeEnv); mode != "" {
		os.Exit(Run(mode))
	}
	if setup != nil {
		_ = setup()
	}
	os.Exit(m.Run())
}

// Run is the fake runtime in mode; it returns the exit status. Modes:
//
//	serve        the reference runtime, as asked
//	slow         listens 300 ms late
//	die          serves, then exits 3 by itself 300 ms later
//	exit         exits 3 at once, with an ImportError on stderr
//	stop         stops itself (SIGSTOP) before listening
//	elsewhere    listens on a port of its own choosing
//	silent       neither listens nor exits
//	tcp          accepts connections and never answers (no HTTP/2)
//	ignore-term  serves and ignores SIGTERM
//	tls          serves TLS with TLS_CERT and TLS_KEY
//
// It prints "addr=A name=N cwd=D master=M" first, what it was given.
func Run(mode string) int {
	addr, _ := convention.Lookup(convention.AddressEnv, nil)
	name, _ := convention.Lookup(convention.NameEnv, nil)
	cwd, _ := os.Getwd()
	fmt.Printf("addr=%s name=%s cwd=%s master=%s\n", addr, name, cwd, os.Getenv("OPENEDGE_MASTER_API")+os.Getenv("BAETYL_MASTER_API_ADDRESS"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	o := serve.Options{Address: addr}
	switch mode {
	case "serve":
	case "slow":
		time.Sleep(300 * time.Millisecond)
	case "die":
		o.Ready = func(net.Addr) {
			time.AfterFunc(300*time.Millisecond, func() {
				fmt.Fprintln(os.Stderr, "boom")
				os.Exit(3)
			})
		}
	case "exit":
		fmt.Fprintln(os.Stderr, "ImportError: no module named grpc")
		return 3
	case "stop":
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	case "elsewhere":
		o.Address = "127.0.0.1:0"
	case "silent":
		select {}
	case "tcp":
		return acceptOnly(addr)
	case "ignore-term":
		stop()
		signal.Ignore(syscall.SIGTERM)
		ctx = context.Background()
	case "tls":
		o.Config = serve.DefaultConfig()
		o.Config.Server.Cert, o.Config.Server.Key = os.Getenv("TLS_CERT"), os.Getenv("TLS_KEY")
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", mode)
		return 2
	}
	if err := serve.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// acceptOnly accepts connections and holds them, never answering.
func acceptOnly(addr string) int {
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
}
