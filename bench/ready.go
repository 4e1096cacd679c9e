package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

// dial opens Connections connections to addr, with the reconnection
// back-off runtimeproc.WaitReady counts on.
func (r *runner) dial(addr string) error {
	opts := r.cfg.Dial
	opts.DialOptions = append(append([]grpc.DialOption{}, opts.DialOptions...), runtimeproc.DialOptions()...)
	for range r.cfg.Connections {
		c, err := client.Dial(addr, opts)
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

// waitReady waits, within ConnectTimeout, for every connection to be
// ready: the HTTP/2 and TLS handshakes done, as conform waits for an
// instance (runtimeproc.WaitReady). For a runtime bench started, the time
// counts from its exec, and its exit or stop ends the wait at once.
func (r *runner) waitReady(ctx context.Context, addr string) error {
	w := runtimeproc.Wait{Addr: addr, Timeout: r.cfg.ConnectTimeout, Since: time.Now()}
	if r.rt != nil {
		w.Proc, w.Since = r.rt.Proc, time.Time{}
	}
	for _, c := range r.conns {
		c.Connect()
	}
	for i, c := range r.conns {
		_, err := runtimeproc.WaitReady(ctx, c, w)
		var nr *runtimeproc.NotReadyError
		switch {
		case err == nil:
		case errors.As(err, &nr) && nr.Timeout > 0:
			return r.notReady(ctx, i, c, nr)
		default: // exited or stopped (run explains an exit), or ctx
			return err
		}
	}
	return nil
}

// notReady says why connection i did not become ready in time: nothing
// accepted a connection on the address, or one was accepted but the
// handshake did not complete (then with the connection's last error, and
// a hint when it looks like TLS against plaintext).
func (r *runner) notReady(ctx context.Context, i int, c *grpc.ClientConn, nr *runtimeproc.NotReadyError) error {
	if nr.Launched && !nr.PortOpen {
		return nr // it says where the runtime listens, if anywhere
	}
	if !nr.Launched {
		// One look at the port, to tell "nothing listens" from "no
		// handshake".
		d := net.Dialer{Timeout: time.Second}
		tc, err := d.DialContext(context.WithoutCancel(ctx), "tcp", convention.HostPort(nr.Addr))
		if err != nil {
			return fmt.Errorf("runtime at %s accepted no connection within %s: %w", nr.Addr, nr.Timeout, err)
		}
		tc.Close()
	}
	// Ask for the reason: a call that does not wait for the connection
	// fails with the last connection error.
	var resp response
	qctx, qcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	err := c.Invoke(qctx, r.method, newRequest(nil), &resp, r.opts...)
	qcancel()
	hint := ""
	if msg := fmt.Sprint(err); strings.Contains(msg, "server preface") || strings.Contains(msg, "handshake") {
		hint = " (plaintext against TLS or the other way round? check --cacert, --insecure and the runtime's server.cert)"
	}
	if nr.Launched {
		return fmt.Errorf("%w: connection %d: %v%s", nr, i+1, err, hint)
	}
	return fmt.Errorf("connection %d to %s not ready within %s (state %s): %w%s", i+1, nr.Addr, nr.Timeout, nr.State, err, hint)
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
