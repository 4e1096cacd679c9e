// Package client calls a function runtime's Call method over gRPC. It is the
// one client that oe-rt call, conform and bench share: a Message is the
// convention's FunctionMessage as a plain Go value, a Schema maps it onto the
// wire (the OpenEdge or Baetyl proto, or a runtime's own .proto parsed at run
// time), and Dial makes the connection with the TLS options grpcurl users know.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"

	"github.com/oe-rt/oe-rt/internal/convention"
)

// Message is the convention's FunctionMessage.
type Message struct {
	ID               uint64 `json:"id"`
	QOS              uint32 `json:"qos"`
	Topic            string `json:"topic"`
	Payload          []byte `json:"payload"`
	Timestamp        int64  `json:"timestamp,omitempty"`
	FunctionName     string `json:"functionName"`
	FunctionInvokeID string `json:"functionInvokeID"`
}

// TLS configures a TLS connection. With Insecure the server's certificate is
// not verified; with CACert it is verified against that CA instead of the
// system roots; Cert and Key present a client certificate (mutual TLS).
type TLS struct {
	CACert     string
	Cert       string
	Key        string
	ServerName string
	Insecure   bool
}

// Options configures Dial.
type Options struct {
	// TLS, when non-nil, makes the connection use TLS; nil means plaintext.
	TLS *TLS
	// MaxMsgSize bounds messages in both directions; 0 means the
	// convention's default of 4 MiB. The client allows a little more than the
	// server's limit for sending, so that the server's answer to an oversized
	// request can be observed.
	MaxMsgSize int
	// DialOptions are added to the connection's options.
	DialOptions []grpc.DialOption
}

// Dial connects to a runtime at addr (host:port, an optional grpc:// scheme is
// accepted). It does not wait for the connection: the first call does.
func Dial(addr string, opts Options) (*grpc.ClientConn, error) {
	if addr == "" {
		return nil, errors.New("no address: pass --address or set " + convention.AddressEnv[len(convention.AddressEnv)-1])
	}
	creds := insecure.NewCredentials()
	if opts.TLS != nil {
		cfg, err := opts.TLS.Config()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	size := opts.MaxMsgSize
	if size <= 0 {
		size = convention.DefaultMaxMessageSize
	}
	dopts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(size), grpc.MaxCallSendMsgSize(SendLimit(size))),
	}, opts.DialOptions...)
	conn, err := grpc.NewClient("passthrough:///"+convention.HostPort(addr), dopts...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// SendLimit is the largest request message a connection dialled with
// Options.MaxMsgSize = maxMsgSize sends (0 means the convention's 4 MiB):
// 1.5 times the limit plus 1 KiB, so that a request somewhat over the
// runtime's own limit reaches it and the runtime's answer can be seen.
func SendLimit(maxMsgSize int) int {
	if maxMsgSize <= 0 {
		maxMsgSize = convention.DefaultMaxMessageSize
	}
	return maxMsgSize + maxMsgSize/2 + 1024
}

// Config builds the tls.Config.
func (t *TLS) Config() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.Insecure, MinVersion: tls.VersionTLS12}
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read CA certificate %s: no PEM certificate found", t.CACert)
		}
		cfg.RootCAs = pool
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, errors.New("a client certificate needs both --cert and --key")
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Client calls one runtime.
type Client struct {
	conn   grpc.ClientConnInterface
	schema *Schema
}

// New returns a client that calls through conn with the given schema (nil
// means OpenEdge()).
func New(conn grpc.ClientConnInterface, schema *Schema) *Client {
	if schema == nil {
		schema = OpenEdge()
	}
	return &Client{conn: conn, schema: schema}
}

// Schema returns the client's schema.
func (c *Client) Schema() *Schema { return c.schema }

// Call sends m and returns the response message. A non-OK status comes back
// as an error that status.FromError understands.
func (c *Client) Call(ctx context.Context, m *Message, opts ...grpc.CallOption) (*Message, error) {
	res := c.schema.NewResponse()
	if err := c.conn.Invoke(ctx, c.schema.FullMethod(), c.schema.Encode(m), res, opts...); err != nil {
		return nil, err
	}
	return c.schema.Decode(res), nil
}

// CallRaw sends raw bytes as the request of method (empty means the schema's
// Call) and returns the raw response bytes: for requests that are not valid
// messages, and for methods the schema does not know.
func (c *Client) CallRaw(ctx context.Context, method string, req []byte, opts ...grpc.CallOption) ([]byte, error) {
	if method == "" {
		method = c.schema.FullMethod()
	}
	var res []byte
	opts = append(opts, grpc.ForceCodecV2(rawCodec{}))
	if err := c.conn.Invoke(ctx, method, &req, &res, opts...); err != nil {
		return nil, err
	}
	return res, nil
}

// rawCodec passes *[]byte through untouched.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*b = data.Materialize()
	return nil
}
