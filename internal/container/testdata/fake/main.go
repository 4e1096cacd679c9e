// Command fake is the runtime of the container tests' images, static
// (CGO_ENABLED=0) so that it runs FROM scratch. Its first argument chooses
// how it behaves; every mode serves the fixtures as oe-rt serve does
// (serve.Run) unless it says otherwise:
//
//	serve       the good runtime: SIGTERM stops it gracefully
//	no-sigterm  leaves SIGTERM at its default action (SIG_DFL), as a
//	            runtime that installs no handler: natively SIGTERM ends
//	            it, as PID 1 of a container it is never delivered
//	wrapper     a non-exec wrapper (what `sh -c ./runtime` is): PID 1
//	            leaves SIGTERM at its default action and runs `fake serve`
//	            as its child, waiting for it
//	zombies     starts a child that exits at once every 100 ms and never
//	            waits for it: each zombie holds a PID of the pids limit
//	hog         once serving, takes 200 MiB of memory, touched
//	loopback    listens on 127.0.0.1:50051 instead of the address given
//	config      reads its configuration where the master mounts it
//	            (serve.DefaultConfigPath, under the image's WORKDIR /)
//	            and exits 1 when it, or a codedir it names, is not there
//	api         asks the master API (BAETYL_MASTER_API_SOCKET) for
//	            /v1/system/inspect once, then serves
//	exit        exits 0 at once (the zombies' children)
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
	"unsafe"

	"github.com/oe-rt/oe-rt/serve"
)

func main() {
	mode := "serve"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "exit":
		return
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		run(ctx, "")
	case "no-sigterm":
		sigDefault(syscall.SIGTERM)
		run(context.Background(), "")
	case "wrapper":
		sigDefault(syscall.SIGTERM)
		cmd := exec.Command(os.Args[0], "serve")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		err := cmd.Run()
		if cmd.ProcessState != nil {
			os.Exit(cmd.ProcessState.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "wrapper:", err)
		os.Exit(1)
	case "zombies":
		go func() {
			for {
				cmd := exec.Command(os.Args[0], "exit")
				if err := cmd.Start(); err != nil {
					fmt.Fprintln(os.Stderr, "zombies:", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		run(ctx, "")
	case "hog":
		go func() {
			time.Sleep(500 * time.Millisecond)
			var keep [][]byte
			for i := 0; i < 200; i++ {
				b := make([]byte, 1<<20)
				for j := range b {
					b[j] = byte(j)
				}
				keep = append(keep, b)
			}
			fmt.Fprintln(os.Stderr, "hog: holding", len(keep), "MiB")
			select {}
		}()
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		run(ctx, "")
	case "config":
		path, _ := serve.DefaultConfigPath(nil)
		cfg, err := serve.LoadConfig(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake:", err)
			os.Exit(1)
		}
		for _, f := range cfg.Functions {
			if f.CodeDir == "" {
				continue
			}
			if _, err := os.Stat(f.CodeDir); err != nil {
				fmt.Fprintln(os.Stderr, "fake: codedir:", err)
				os.Exit(1)
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := serve.Run(ctx, serve.Options{Config: cfg}); err != nil {
			fmt.Fprintln(os.Stderr, "fake:", err)
			os.Exit(1)
		}
	case "api":
		sock := os.Getenv("BAETYL_MASTER_API_SOCKET")
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}}
		if res, err := hc.Get("http://baetyl/v1/system/inspect"); err != nil {
			fmt.Fprintln(os.Stderr, "fake: master API:", err)
		} else {
			fmt.Fprintln(os.Stderr, "fake: master API:", res.Status)
			res.Body.Close()
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		run(ctx, "")
	case "loopback":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		run(ctx, "127.0.0.1:50051")
	default:
		fmt.Fprintln(os.Stderr, "fake: unknown mode", mode)
		os.Exit(2)
	}
}

func run(ctx context.Context, addr string) {
	if err := serve.Run(ctx, serve.Options{Address: addr}); err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		os.Exit(1)
	}
}

// sigDefault sets sig's action to SIG_DFL (the Go runtime installs a
// handler of its own for every signal, which signal.Reset restores).
func sigDefault(sig syscall.Signal) {
	var act struct {
		handler  uintptr
		flags    uint64
		restorer uintptr
		mask     uint64
	}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "fake: rt_sigaction:", errno)
		os.Exit(1)
	}
}
