package serve

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// This file holds what serve puts between grpc-go and its connections:
//
//   - a listener that counts the open connections and logs accept errors
//     (EMFILE and the like) once per burst, with the descriptor limit;
//   - transport credentials that wrap every connection, once it speaks
//     HTTP/2 in the clear (after TLS, if any), in a connTracker;
//   - the connTracker, which follows the frame headers the connection
//     carries, to see which streams have a response waiting to be sent and
//     since when it last made progress. grpc-go keeps a response that the
//     client does not let it send (a zero flow-control window, a socket it
//     does not read) for as long as the stream lives, and offers no way to
//     end one stream from outside; serve ends the connection instead, which
//     frees everything it holds.

// HTTP/2 frame types and flags that the tracker looks at (RFC 9113).
const (
	frameData      = 0x0
	frameHeaders   = 0x1
	frameRSTStream = 0x3

	flagEndStream = 0x1

	frameHeaderLen = 9
	// clientPreface is the length of "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	// which a client sends before its first frame.
	clientPreface = 24
	// grpcPrefix is the length of the prefix of a gRPC message: a flag
	// byte and a 4-byte big-endian length.
	grpcPrefix = 5
	// recentResets is how many stream IDs the client reset a tracker
	// remembers: grpc-go may still write the headers it had queued for a
	// stream after the client's RST_STREAM was read.
	recentResets = 256
)

// listener counts connections and reports accept errors.
type listener struct {
	net.Listener
	log  *slog.Logger
	open atomic.Int64 // connections accepted and not yet closed

	mu       sync.Mutex
	failing  bool // in a burst of accept errors
	failures int
	since    time.Time
}

func newListener(l net.Listener, log *slog.Logger) *listener {
	return &listener{Listener: l, log: log}
}

// Accept logs the first error of a burst of temporary accept errors (the
// process or system is out of descriptors), with the limit and the number
// of connections open, and once accepting works again, how long it failed.
// grpc-go retries temporary errors with a backoff.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if errors.Is(err, net.ErrClosed) || !temporary(err) {
			return nil, err
		}
		l.failures++
		if !l.failing {
			l.failing, l.since = true, time.Now()
			limit, _ := openFileLimit()
			l.log.Error("cannot accept connections: retrying; idle connections are closed after server.idle.timeout",
				"error", err.Error(), "open_file_limit", limit, "open_connections", l.open.Load())
		}
		return nil, err
	}
	if l.failing {
		l.log.Info("accepting connections again", "failed_accepts", l.failures, "after", time.Since(l.since).Round(time.Millisecond).String(),
			"open_connections", l.open.Load())
		l.failing, l.failures = false, 0
	}
	l.open.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

// temporary reports whether an accept error is one that grpc-go retries.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// countedConn is an accepted connection; closing it updates the count.
type countedConn struct {
	net.Conn
	l    *listener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// trackingCreds wraps transport credentials so that every connection is
// tracked once it is established.
type trackingCreds struct {
	credentials.TransportCredentials
	tr *tracker
}

func (c trackingCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return nil, nil, err
	}
	return c.tr.track(conn, raw), info, nil
}

func (c trackingCreds) Clone() credentials.TransportCredentials {
	return trackingCreds{TransportCredentials: c.TransportCredentials.Clone(), tr: c.tr}
}

// tracker knows the connections of a server and ends those with a stalled
// response.
type tracker struct {
	stall time.Duration // how long a response may make no progress
	log   *slog.Logger

	mu    sync.Mutex
	conns map[*connTracker]struct{}
}

func newTracker(stall time.Duration, log *slog.Logger) *tracker {
	return &tracker{stall: stall, log: log, conns: map[*connTracker]struct{}{}}
}

func (t *tracker) track(conn, raw net.Conn) *connTracker {
	c := &connTracker{Conn: conn, raw: raw, tr: t, prefaceLeft: clientPreface, streams: map[uint32]*response{}}
	t.mu.Lock()
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	return c
}

func (t *tracker) forget(c *connTracker) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// watch ends, until ctx is done, every connection that holds a response
// that made no progress for longer than the stall limit.
func (t *tracker) watch(ctx context.Context) {
	every := min(max(t.stall/4, 10*time.Millisecond), time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.sweep(now)
		}
	}
}

// sweep closes the connections with a stalled response.
func (t *tracker) sweep(now time.Time) {
	t.mu.Lock()
	conns := make([]*connTracker, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, c := range conns {
		if id, waited, ok := c.stalled(now, t.stall); ok {
			t.log.Warn("closing a connection: a response made no progress (the client does not read it)",
				"remote", c.raw.RemoteAddr().String(), "stream", id, "waited", waited.Round(time.Millisecond).String(),
				"limit", t.stall.String())
			c.raw.Close()
			t.forget(c)
		}
	}
}

// response is what the tracker knows of one stream's response.
type response struct {
	last    time.Time // headers or the last DATA written
	waiting bool      // a message is not completely written
	reset   bool      // the client reset the stream: nothing more is due
	prefix  int       // bytes of a gRPC message prefix written so far
	hdr     [grpcPrefix]byte
	left    uint32 // bytes of the current message still to write
}

// frameScanner follows the frames of one direction of a connection across
// reads or writes of any size.
type frameScanner struct {
	hdr  [frameHeaderLen]byte
	hdrN int
	// the frame whose payload is being passed
	typ    byte
	flags  byte
	stream uint32
	left   int
}

// connTracker is an established connection as grpc-go sees it.
type connTracker struct {
	net.Conn          // what grpc-go reads and writes
	raw      net.Conn // the accepted connection, closed to end it
	tr       *tracker
	once     sync.Once

	mu          sync.Mutex
	prefaceLeft int
	in, out     frameScanner
	streams     map[uint32]*response
	resets      []uint32 // recently reset by the client, a ring
	resetAt     int
}

func (c *connTracker) Close() error {
	c.once.Do(func() { c.tr.forget(c) })
	return c.Conn.Close()
}

func (c *connTracker) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.scanIn(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

func (c *connTracker) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		now := time.Now()
		c.mu.Lock()
		c.scanOut(p[:n], now)
		c.mu.Unlock()
	}
	return n, err
}

// scanIn follows what the client sends; only RST_STREAM matters.
func (c *connTracker) scanIn(p []byte) {
	if c.prefaceLeft > 0 {
		k := min(c.prefaceLeft, len(p))
		c.prefaceLeft -= k
		p = p[k:]
	}
	c.in.scan(p, func(s *frameScanner) {
		if s.typ == frameRSTStream {
			c.clientReset(s.stream)
		}
	}, nil)
}

func (c *connTracker) clientReset(id uint32) {
	if r := c.streams[id]; r != nil {
		r.reset = true
		return
	}
	if c.resets == nil {
		c.resets = make([]uint32, 0, recentResets)
	}
	if len(c.resets) < recentResets {
		c.resets = append(c.resets, id)
	} else {
		c.resets[c.resetAt] = id
		c.resetAt = (c.resetAt + 1) % recentResets
	}
}

func (c *connTracker) wasReset(id uint32) bool {
	for _, r := range c.resets {
		if r == id {
			return true
		}
	}
	return false
}

// scanOut follows what the server sends: response headers open a response,
// DATA frames carry its messages, END_STREAM or RST_STREAM end it.
func (c *connTracker) scanOut(p []byte, now time.Time) {
	c.out.scan(p, func(s *frameScanner) {
		switch s.typ {
		case frameHeaders:
			if s.flags&flagEndStream != 0 {
				delete(c.streams, s.stream)
			} else if c.streams[s.stream] == nil {
				c.streams[s.stream] = &response{last: now, waiting: true, reset: c.wasReset(s.stream)}
			}
		case frameData:
			if s.flags&flagEndStream != 0 {
				delete(c.streams, s.stream)
			} else if r := c.streams[s.stream]; r != nil {
				r.last = now
			}
		case frameRSTStream:
			delete(c.streams, s.stream)
		}
	}, func(s *frameScanner, payload []byte) {
		if s.typ != frameData {
			return
		}
		r := c.streams[s.stream]
		if r == nil {
			return
		}
		r.last = now
		r.messages(payload)
		r.waiting = r.prefix > 0 || r.left > 0
	})
}

// messages follows gRPC message framing through a DATA payload. grpc-go
// does not pad the DATA frames it writes.
func (r *response) messages(p []byte) {
	for len(p) > 0 {
		if r.left > 0 {
			k := uint32(min(uint64(len(p)), uint64(r.left)))
			r.left -= k
			p = p[k:]
			continue
		}
		k := copy(r.hdr[r.prefix:], p)
		r.prefix += k
		p = p[k:]
		if r.prefix == grpcPrefix {
			r.left = binary.BigEndian.Uint32(r.hdr[1:])
			r.prefix = 0
		}
	}
}

// stalled reports a stream whose response has waited longer than limit.
func (c *connTracker) stalled(now time.Time, limit time.Duration) (id uint32, waited time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sid, r := range c.streams {
		if r.reset {
			// Nothing more will be written for it; forget it once it
			// cannot be confused with a live stream any more.
			if now.Sub(r.last) > limit {
				delete(c.streams, sid)
			}
			continue
		}
		if w := now.Sub(r.last); r.waiting && w > limit {
			return sid, w, true
		}
	}
	return 0, 0, false
}

// scan passes p through the scanner: header is called once per frame,
// when its header is complete (s.left is then the payload's length), and
// payload, when not nil, with every piece of the frame's payload.
func (s *frameScanner) scan(p []byte, header func(*frameScanner), payload func(*frameScanner, []byte)) {
	for len(p) > 0 {
		if s.left == 0 {
			k := copy(s.hdr[s.hdrN:], p)
			s.hdrN += k
			p = p[k:]
			if s.hdrN < frameHeaderLen {
				return
			}
			s.hdrN = 0
			s.left = int(s.hdr[0])<<16 | int(s.hdr[1])<<8 | int(s.hdr[2])
			s.typ, s.flags = s.hdr[3], s.hdr[4]
			s.stream = binary.BigEndian.Uint32(s.hdr[5:]) & 0x7fffffff
			header(s)
			continue
		}
		k := min(s.left, len(p))
		if payload != nil {
			payload(s, p[:k])
		}
		s.left -= k
		p = p[k:]
	}
}
