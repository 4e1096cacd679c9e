// Package serve is oe-rt's reference function runtime: a gRPC server that
// follows the OpenEdge/Baetyl runtime convention to the letter and that other
// runtimes are measured against.
//
// It serves openedge.Function and baetyl.Function on one port, so it answers
// under either profile, plus gRPC health and server reflection. The functions
// are the built-in conformance fixtures (echo, context, none, fail, sleep) or
// programs run once per call (exec: handlers). A Call's response is its
// request with only Payload replaced. Statuses: an unconfigured function is
// NOT_FOUND, a failing function UNKNOWN with its message, a panicking one
// INTERNAL (the server keeps serving), an oversized message
// RESOURCE_EXHAUSTED. On cancellation of the context given to Run (the
// command maps SIGTERM and SIGINT onto it) the server stops accepting, lets
// calls in flight finish within the grace period, then closes the rest.
//
// What a client can make it hold is bounded: calls at once per connection
// (server.concurrent.max), message sizes, responses the client does not
// read (the connection is closed after server.call.timeout without
// progress), idle connections (server.idle.timeout), pings. exec: programs
// run without the master API's variables, within the output limit, and own
// their whole process tree. docs/serve.md lists the limits and the memory
// worst case.
package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/proto/baetyl"
	"github.com/oe-rt/oe-rt/proto/openedge"
)

// Options configures Run.
type Options struct {
	// Config is the runtime's configuration; nil means DefaultConfig().
	Config *Config
	// Address overrides every other source of the listen address (the
	// --address flag).
	Address string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Logger receives the runtime's log; nil discards it.
	Logger *slog.Logger
	// Ready, when set, is called with the listening address once the server
	// accepts calls.
	Ready func(net.Addr)
	// AdoptOrphans makes this process a child subreaper, so that what an
	// exec: program leaves behind comes back to it and is ended with the
	// call (see docs/serve.md). It is a property of the whole process, and
	// every child process that serve did not start as an exec: program is
	// taken for such an orphan: set it only in a process that starts no
	// other children, as the oe-rt serve command does.
	AdoptOrphans bool
	// ReleaseMemory returns the memory freed after a burst of calls to the
	// operating system once the server is idle (debug.FreeOSMemory, which
	// acts on the whole process), so that the process shrinks back.
	ReleaseMemory bool
}

// ResolveAddress picks the listen address: the flag, else the first set
// variable of convention.AddressEnv, else server.address. It returns the
// address and where it came from. An address that is not host:port with a
// port from 0 to 65535 is an error that names where it came from.
func ResolveAddress(flag string, cfg *Config, lookup func(string) (string, bool)) (addr, source string, err error) {
	switch v, name := convention.Lookup(convention.AddressEnv, lookup); {
	case flag != "":
		addr, source = flag, "--address"
	case v != "":
		addr, source = v, "$"+name
	case cfg != nil && cfg.Server.Address != "":
		addr, source = cfg.Server.Address, "server.address"
	default:
		return "", "", fmt.Errorf("no address to listen on: pass --address, set %s, or set server.address in the config", strings.Join(convention.AddressEnv, ", "))
	}
	hp := convention.HostPort(addr)
	if err := CheckAddress(hp); err != nil {
		return "", "", fmt.Errorf("address %q (from %s): %w", addr, source, err)
	}
	return hp, source, nil
}

// CheckAddress reports whether addr is an address serve can listen on:
// host:port, the host empty (every interface), an IP address or a name,
// the port a number from 0 (any free port) to 65535.
func CheckAddress(addr string) error {
	if scheme, _, ok := strings.Cut(addr, "://"); ok {
		return fmt.Errorf("a %s:// URL is not an address: want host:port, such as 127.0.0.1:50051 (a grpc://, grpcs:// or tcp:// prefix is accepted and dropped)", scheme)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, such as 127.0.0.1:50051 or :50051")
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q: want an IP address or a host name", host)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		if _, err := strconv.ParseUint(port, 10, 64); err == nil {
			return fmt.Errorf("port %s is out of range: want 0 to 65535", port)
		}
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	return nil
}

// ResolveName picks the instance name: the first set variable of
// convention.NameEnv, else the config's name, else "oe-rt".
func ResolveName(cfg *Config, lookup func(string) (string, bool)) string {
	if v, _ := convention.Lookup(convention.NameEnv, lookup); v != "" {
		return v
	}
	if cfg != nil && cfg.Name != "" {
		return cfg.Name
	}
	return "oe-rt"
}

// Run listens, serves until ctx is cancelled, then stops gracefully. It
// returns nil after a graceful stop.
func Run(ctx context.Context, opts Options) error {
	cfg := opts.Config
	if cfg == nil {
		cfg = DefaultConfig()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr, source, err := ResolveAddress(opts.Address, cfg, opts.LookupEnv)
	if err != nil {
		return err
	}
	srv, err := New(cfg, log)
	if err != nil {
		return err
	}
	srv.releaseMemory = opts.ReleaseMemory
	if opts.AdoptOrphans {
		if err := reap.enableAdoption(); err != nil {
			return err
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen on %s (from %s): the address is already in use: stop the process holding it or choose another port", addr, source)
		}
		return fmt.Errorf("listen on %s (from %s): %w", addr, source, err)
	}
	log.Info("runtime starting", "name", ResolveName(cfg, opts.LookupEnv), "address", lis.Addr().String(), "address_from", source,
		"functions", srv.FunctionNames(), "tls", cfg.Server.Cert != "", "mutual_tls", cfg.Server.CA != "")
	return srv.Serve(ctx, lis, opts.Ready)
}

// Server is the reference runtime's gRPC server.
type Server struct {
	grpc    *grpc.Server
	health  *health.Server
	funcs   map[string]Func
	grace   time.Duration
	log     *slog.Logger
	tracker *tracker
	// started and finished count calls, for the idle memory release.
	started, finished atomic.Uint64
	releaseMemory     bool
}

// Keepalive settings (not configurable): serve pings a connection that has
// been silent for keepaliveTime and closes it when the ping is not
// answered within keepaliveTimeout; a client may ping every
// keepaliveMinTime, with or without calls in flight, and is disconnected
// (GOAWAY ENHANCE_YOUR_CALM) when it pings more often.
const (
	keepaliveTime    = time.Minute
	keepaliveTimeout = 20 * time.Second
	keepaliveMinTime = 10 * time.Second
)

// idleRelease is how long the server must have been without calls before
// it returns freed memory to the operating system (Options.ReleaseMemory).
const idleRelease = time.Second

// New builds a server from cfg: functions resolved, TLS loaded, limits set.
func New(cfg *Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	max := int64(cfg.Server.Message.Length.Max)
	funcs, err := resolveAll(cfg, execEnv(os.Environ()))
	if err != nil {
		return nil, err
	}
	idle := time.Duration(cfg.Server.Idle.Timeout)
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	stall := time.Duration(cfg.Server.Call.Timeout)
	if stall <= 0 {
		stall = DefaultCallTimeout
	}
	creds := insecure.NewCredentials()
	if cfg.Server.Cert != "" {
		tc, err := serverTLS(cfg.Server)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	tr := newTracker(stall, log)
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(max)),
		grpc.MaxSendMsgSize(int(max)),
		grpc.Creds(trackingCreds{TransportCredentials: creds, tr: tr}),
		grpc.ConnectionTimeout(min(idle, HandshakeTimeout)),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: idle,
			Time:              keepaliveTime,
			Timeout:           keepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveMinTime,
			PermitWithoutStream: true,
		}),
	}
	if n := cfg.Server.Concurrent.Max; n > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(n)))
	}
	if n := cfg.Server.Workers.Max; n > 0 {
		opts = append(opts, grpc.NumStreamWorkers(uint32(n)))
	}
	s := &Server{
		grpc:    grpc.NewServer(opts...),
		health:  health.NewServer(),
		funcs:   funcs,
		grace:   time.Duration(cfg.Server.Timeout),
		log:     log,
		tracker: tr,
	}
	openedge.RegisterFunctionServer(s.grpc, openedgeService{s: s})
	baetyl.RegisterFunctionServer(s.grpc, baetylService{s: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

func serverTLS(c ServerConfig) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("load server certificate (server.cert, server.key): %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("read server.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.ca %s holds no PEM certificate", c.CA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// FunctionNames lists the functions served, sorted.
func (s *Server) FunctionNames() []string {
	names := make([]string, 0, len(s.funcs))
	for n := range s.funcs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Serve serves on lis until ctx is cancelled, then stops gracefully: no new
// calls, calls in flight get the grace period, then the rest are closed.
// ready, when not nil, is called once the server accepts calls.
func (s *Server) Serve(ctx context.Context, lis net.Listener, ready func(net.Addr)) error {
	watchCtx, stopWatching := context.WithCancel(context.Background())
	var watchers sync.WaitGroup
	defer func() {
		stopWatching()
		watchers.Wait()
	}()
	watchers.Add(2)
	go func() { defer watchers.Done(); s.tracker.watch(watchCtx) }()
	go func() { defer watchers.Done(); s.housekeep(watchCtx) }()
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(newListener(lis, s.log)) }()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.log.Info("runtime serving", "address", lis.Addr().String())
	if ready != nil {
		ready(lis.Addr())
	}
	select {
	case err := <-errc:
		s.health.Shutdown()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("runtime stopping", "grace", s.grace.String())
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	t := time.NewTimer(s.grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("grace period over: closing the calls still in flight", "grace", s.grace.String())
		s.grpc.Stop()
		<-done
	}
	<-errc
	s.log.Info("runtime stopped")
	return nil
}

// housekeep runs, until ctx is done, once a second: it reaps the orphans of
// exec: programs (ending them when no call is in progress), and with
// releaseMemory, returns freed memory to the operating system once the
// server has had no call for idleRelease after some.
func (s *Server) housekeep(ctx context.Context) {
	tick := time.NewTicker(idleRelease)
	defer tick.Stop()
	var seen, released uint64 // finished calls at the last tick, at the last release
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if reap.adopting() {
			reap.sweep(!reap.busy())
		}
		done := s.finished.Load()
		idle := done == seen && s.started.Load() == done
		if s.releaseMemory && idle && done != released {
			// Two collections: buffers in sync.Pools (grpc-go's) survive
			// the first one.
			runtime.GC()
			debug.FreeOSMemory()
			released = done
			s.log.Debug("idle: memory returned to the system", "calls", done)
		}
		seen = done
	}
}

// call runs the named function and maps its outcome onto a status.
func (s *Server) call(ctx context.Context, c *Call) (out []byte, err error) {
	s.started.Add(1)
	defer s.finished.Add(1)
	fn, ok := s.funcs[c.FunctionName]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "function %q is not configured (this runtime serves: %s)", c.FunctionName, strings.Join(s.FunctionNames(), ", "))
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("function panicked", "function", c.FunctionName, "panic", fmt.Sprint(r))
			out, err = nil, status.Errorf(codes.Internal, "function %q panicked: %v", c.FunctionName, r)
		}
	}()
	out, err = fn(ctx, c)
	if err == nil {
		return out, nil
	}
	if _, ok := status.FromError(err); ok {
		return nil, err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return nil, status.FromContextError(err).Err()
	}
	s.log.Debug("function failed", "function", c.FunctionName, "error", err.Error())
	return nil, status.Error(codes.Unknown, err.Error())
}

type openedgeService struct {
	openedge.UnimplementedFunctionServer
	s *Server
}

func (o openedgeService) Call(ctx context.Context, m *openedge.FunctionMessage) (*openedge.FunctionMessage, error) {
	out, err := o.s.call(ctx, &Call{ID: m.ID, QOS: m.QOS, Topic: m.Topic, Payload: m.Payload, FunctionName: m.FunctionName, FunctionInvokeID: m.FunctionInvokeID})
	if err != nil {
		return nil, err
	}
	m.Payload = out
	return m, nil
}

type baetylService struct {
	baetyl.UnimplementedFunctionServer
	s *Server
}

// Call hands the function an empty payload as {}, as Baetyl's own runtimes
// do (a function that echoes it makes the function manager publish {});
// openedgeService hands it on empty, as OpenEdge 0.1.2's runtimes did.
func (b baetylService) Call(ctx context.Context, m *baetyl.FunctionMessage) (*baetyl.FunctionMessage, error) {
	payload := m.Payload
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	out, err := b.s.call(ctx, &Call{ID: m.ID, QOS: m.QOS, Topic: m.Topic, Payload: payload, Timestamp: m.Timestamp, FunctionName: m.FunctionName, FunctionInvokeID: m.FunctionInvokeID})
	if err != nil {
		return nil, err
	}
	m.Payload = out
	return m, nil
}
