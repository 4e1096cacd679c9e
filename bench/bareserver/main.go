// Command bareserver is the baseline of oe-rt's performance figures: a bare
// grpc-go server for openedge.Function whose Call returns the request
// untouched. It does nothing a runtime could skip, so it is as fast as a
// grpc-go runtime can be; bench/compare-ghz.sh and bench/performance.sh
// measure against it.
//
//	bareserver -address 127.0.0.1:50051
//
// It prints "listening on HOST:PORT" once it accepts calls, and stops on
// SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/oe-rt/oe-rt/proto/openedge"
)

type echo struct {
	openedge.UnimplementedFunctionServer
}

func (echo) Call(_ context.Context, m *openedge.FunctionMessage) (*openedge.FunctionMessage, error) {
	return m, nil
}

func main() {
	def := "127.0.0.1:50051"
	if v := os.Getenv("OPENEDGE_SERVICE_ADDRESS"); v != "" {
		def = v // started by oe-rt bench or conform, like a runtime
	}
	addr := flag.String("address", def, "`host:port` to listen on (default $OPENEDGE_SERVICE_ADDRESS, else 127.0.0.1:50051)")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareserver:", err)
		os.Exit(1)
	}
	srv := grpc.NewServer()
	openedge.RegisterFunctionServer(srv, echo{})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	fmt.Println("listening on", lis.Addr())
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "bareserver:", err)
		os.Exit(1)
	}
}
