package bench_test

// The test binary doubles as the runtimes bench starts in these tests:
// with OE_RT_BENCH_TEST_RUNTIME set it becomes one that behaves as the
// mode says (the way go-plugin's tests re-execute themselves), serving
// the reference runtime's fixtures on the address bench gives it.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/oe-rt/oe-rt/bench"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/serve"
)

const runtimeEnv = "OE_RT_BENCH_TEST_RUNTIME"

func TestMain(m *testing.M) {
	if mode := os.Getenv(runtimeEnv); mode != "" {
		os.Exit(runtimeMain(mode))
	}
	_ = launch.EnableSubreaper()
	os.Exit(m.Run())
}

func runtimeMain(mode string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	o := serve.Options{}
	switch mode {
	case "serve":
	case "die":
		// Serves, then dies by itself 300 ms later.
		o.Ready = func(net.Addr) {
			time.AfterFunc(300*time.Millisecond, func() {
				fmt.Fprintln(os.Stderr, "boom")
				os.Exit(3)
			})
		}
	case "exit":
		fmt.Fprintln(os.Stderr, "ImportError: no module named grpc")
		return 1
	case "stop":
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	case "elsewhere":
		o.Address = "127.0.0.1:0" // not the address it was given
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

// launched returns a configuration that has bench start this test binary
// as a runtime in mode.
func launched(mode string) bench.Config {
	cfg := config("")
	cfg.Launch = &bench.Launch{Command: []string{os.Args[0]}, Env: []string{runtimeEnv + "=" + mode}}
	return cfg
}

// assertNoChildren checks that no process a test started is left.
func assertNoChildren(t *testing.T) {
	t.Helper()
	var alive []launch.Proc
	for _, p := range launch.Tree(os.Getpid())[1:] {
		if p.State != 'Z' {
			alive = append(alive, p)
		}
	}
	assert.Empty(t, alive, "processes outlived the run")
}
