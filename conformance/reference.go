package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/proto/openedge"
)

// ServeReference is the reference conform calibrates its timing checks
// with: a bare grpc-go server on addr ("" = the address in the
// environment, as a runtime reads it) for openedge.Function, whose Call
// serves two fixtures and nothing else — echo returns the request, sleep
// waits {"ms": N} or until the call is cancelled. It does nothing a runtime
// could skip, so what it takes on a machine is what the machine takes. It
// serves until ctx is done, then stops gracefully.
//
// The program that runs it is given in Config.Reference: `oe-rt conform`
// runs itself with a hidden subcommand; a Go test can re-execute its test
// binary.
func ServeReference(ctx context.Context, addr string) error {
	if addr == "" {
		v, _ := convention.Lookup(convention.AddressEnv, nil)
		addr = convention.HostPort(v)
	}
	if addr == "" {
		return errors.New("reference: no address: set OPENEDGE_SERVICE_ADDRESS")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	s := grpc.NewServer()
	openedge.RegisterFunctionServer(s, reference{})
	go func() {
		<-ctx.Done()
		s.GracefulStop()
	}()
	if err := s.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("reference: %w", err)
	}
	return nil
}

type reference struct {
	openedge.UnimplementedFunctionServer
}

func (reference) Call(ctx context.Context, m *openedge.FunctionMessage) (*openedge.FunctionMessage, error) {
	switch m.FunctionName {
	case "echo":
		return m, nil
	case "sleep":
		var arg struct {
			MS int `json:"ms"`
		}
		if err := json.Unmarshal(m.Payload, &arg); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "sleep wants {\"ms\": N}: %v", err)
		}
		t := time.NewTimer(time.Duration(arg.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return m, nil
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil, status.Errorf(codes.NotFound, "the reference serves echo and sleep only, not %q", m.FunctionName)
}
