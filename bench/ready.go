package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
)

func (r *runner) dial(addr string) error {
	for range r.cfg.Connections {
		c, err := client.Dial(addr, r.cfg.Dial)
		if err != nil {
			for _, c := range r.conns {
				c.Close()
			}
			r.conns = nil
			return err
		}
		r.conns = append(r.conns, c)
	}
	return nil
}

// waitReady waits for the runtime to accept TCP connections (polled every
// 10ms, so that gRPC's reconnection back-off does not delay the start), then
// for every gRPC connection to be ready (HTTP/2 and TLS handshakes done).
func (r *runner) waitReady(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	hostport := convention.HostPort(addr)
	var lastErr error
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", hostport)
		if err == nil {
			c.Close()
			break
		}
		var ne net.Error
		if lastErr == nil || !errors.As(err, &ne) || !ne.Timeout() {
			lastErr = err // rather a refusal than the dial the deadline cut short
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			if context.Cause(ctx) == context.DeadlineExceeded {
				return fmt.Errorf("runtime at %s accepted no connection within %s: %w", addr, r.cfg.ConnectTimeout, lastErr)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
	for i, c := range r.conns {
		c.Connect()
		for s := c.GetState(); s != connectivity.Ready; s = c.GetState() {
			if c.WaitForStateChange(ctx, s) {
				continue
			}
			if context.Cause(ctx) != context.DeadlineExceeded {
				return ctx.Err()
			}
			// Ask for the reason: a call that does not wait for the
			// connection fails with the last connection error.
			var resp response
			qctx, qcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			err := c.Invoke(qctx, r.method, newRequest(nil), &resp, r.opts...)
			qcancel()
			hint := ""
			if msg := fmt.Sprint(err); strings.Contains(msg, "server preface") || strings.Contains(msg, "handshake") {
				hint = " (plaintext against TLS or the other way round? check --cacert, --insecure and the runtime's server.cert)"
			}
			return fmt.Errorf("connection %d to %s not ready within %s (state %s): %w%s", i+1, addr, r.cfg.ConnectTimeout, s, err, hint)
		}
	}
	return nil
}

// firstCall makes one call and waits for its answer, whatever it is: the
// moment a started runtime has answered its first call.
func (r *runner) firstCall(ctx context.Context, req *request) {
	if r.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	var resp response
	_ = r.conns[0].Invoke(ctx, r.method, req, &resp, r.opts...) // any answer will do
}
