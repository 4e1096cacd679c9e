// Package rawh2 is a minimal HTTP/2 client that speaks gRPC's framing and
// misbehaves on purpose, for serve's tests: it can advertise a zero
// flow-control window and never open it, open more streams than the server
// allows, hand out window a little at a time, or reset streams. It honours
// the server's flow control for what it sends, answers SETTINGS and PING
// like any client, and records what the server sent on each stream.
package rawh2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Stream is what the server sent on one stream.
type Stream struct {
	ID      uint32
	Headers int           // HEADERS frames received (response headers, trailers)
	Status  string        // grpc-status, when trailers came
	Data    int           // DATA payload bytes received
	Reset   bool          // the server reset the stream
	Code    http2.ErrCode // its RST_STREAM code
	Ended   bool          // END_STREAM received
}

// Conn is one HTTP/2 connection.
type Conn struct {
	c    net.Conn
	fr   *http2.Framer
	wmu  sync.Mutex // frame writes
	enc  *hpack.Encoder
	hbuf bytes.Buffer

	mu         sync.Mutex
	cond       *sync.Cond
	next       uint32
	streams    map[uint32]*Stream
	connWindow int64            // what the server lets us send, connection-wide
	winInit    int64            // the server's SETTINGS_INITIAL_WINDOW_SIZE
	windows    map[uint32]int64 // per stream
	maxFrame   int
	goAway     *http2.ErrCode
	pingAcks   int
	err        error // why reading stopped
	done       chan struct{}
}

// Dial connects to addr, sends the client preface and SETTINGS (settings
// are sent as given: INITIAL_WINDOW_SIZE 0 makes every stream's window
// zero) and starts reading.
func Dial(addr string, settings ...http2.Setting) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		c: nc, fr: http2.NewFramer(nc, nc), next: 1,
		streams: map[uint32]*Stream{}, windows: map[uint32]int64{},
		connWindow: 65535, winInit: 65535, maxFrame: 16384, done: make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	c.fr.SetMaxReadFrameSize(1 << 24)
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		nc.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

// Close closes the connection and waits for the reader.
func (c *Conn) Close() error {
	err := c.c.Close()
	<-c.done
	return err
}

// Done is closed when the connection ends (the server closed it, or Close).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why reading stopped, once Done is closed.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) read() {
	defer close(c.done)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = f.ForeachSetting(func(s http2.Setting) error {
					switch s.ID {
					case http2.SettingInitialWindowSize:
						d := int64(s.Val) - c.winInit
						c.winInit = int64(s.Val)
						for id := range c.windows {
							c.windows[id] += d
						}
					case http2.SettingMaxFrameSize:
						c.maxFrame = int(s.Val)
					}
					return nil
				})
				c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if f.IsAck() {
				c.pingAcks++
			} else {
				data := f.Data
				c.write(func() error { return c.fr.WritePing(true, data) })
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.connWindow += int64(f.Increment)
			} else if _, ok := c.windows[f.StreamID]; ok {
				c.windows[f.StreamID] += int64(f.Increment)
			}
		case *http2.MetaHeadersFrame:
			s := c.stream(f.StreamID)
			s.Headers++
			for _, h := range f.RegularFields() {
				if h.Name == "grpc-status" {
					s.Status = h.Value
				}
			}
			s.Ended = s.Ended || f.StreamEnded()
		case *http2.DataFrame:
			s := c.stream(f.StreamID)
			s.Data += len(f.Data())
			s.Ended = s.Ended || f.StreamEnded()
		case *http2.RSTStreamFrame:
			s := c.stream(f.StreamID)
			s.Reset, s.Code = true, f.ErrCode
			delete(c.windows, f.StreamID)
		case *http2.GoAwayFrame:
			code := f.ErrCode
			c.goAway = &code
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// write writes a frame from the reader, which holds mu; writes never wait
// for mu.
func (c *Conn) write(f func() error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = f()
}

func (c *Conn) stream(id uint32) *Stream {
	s := c.streams[id]
	if s == nil {
		s = &Stream{ID: id}
		c.streams[id] = s
	}
	return s
}

// Call opens a stream for a unary gRPC call of path (such as
// /openedge.Function/Call) on authority and sends msg, a marshalled
// request, as one gRPC message, within the server's flow control. It
// returns the stream's ID; it stops sending, without error, when the
// server resets the stream, and fails when the connection ends or timeout
// passes while it waits for window.
func (c *Conn) Call(authority, path string, msg []byte, timeout time.Duration) (uint32, error) {
	c.mu.Lock()
	id := c.next
	c.next += 2
	c.windows[id] = c.winInit
	c.stream(id)
	c.mu.Unlock()

	c.wmu.Lock()
	c.hbuf.Reset()
	for _, h := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", authority},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		_ = c.enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	c.wmu.Unlock()
	if err != nil {
		return id, err
	}
	body := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	copy(body[5:], msg)
	deadline := time.Now().Add(timeout)
	for len(body) > 0 {
		n, err := c.reserve(id, len(body), deadline)
		if err != nil || n == 0 {
			return id, err
		}
		c.wmu.Lock()
		err = c.fr.WriteData(id, n == len(body), body[:n])
		c.wmu.Unlock()
		if err != nil {
			return id, err
		}
		body = body[n:]
	}
	return id, nil
}

// reserve waits until the server's windows let up to want bytes go on
// stream id, and takes them. 0 without error: the stream was reset.
func (c *Conn) reserve(id uint32, want int, deadline time.Time) (int, error) {
	stop := time.AfterFunc(time.Until(deadline), func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if s := c.streams[id]; s.Reset {
			return 0, nil
		}
		if c.err != nil {
			return 0, fmt.Errorf("connection ended: %w", c.err)
		}
		if w := min(c.connWindow, c.windows[id]); w > 0 {
			n := int(min(int64(want), w, int64(c.maxFrame)))
			c.connWindow -= int64(n)
			c.windows[id] -= int64(n)
			return n, nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("timed out waiting for the server's flow-control window")
		}
		c.cond.Wait()
	}
}

// WindowUpdate gives the server n more bytes of window on stream id (0: the
// connection).
func (c *Conn) WindowUpdate(id, n uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.fr.WriteWindowUpdate(id, n)
}

// Reset resets stream id (CANCEL).
func (c *Conn) Reset(id uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.fr.WriteRSTStream(id, http2.ErrCodeCancel)
}

// Ping sends a PING; PingAcks counts the answers.
func (c *Conn) Ping() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.fr.WritePing(false, [8]byte{'o', 'e', '-', 'r', 't'})
}

// PingAcks is how many PINGs the server answered.
func (c *Conn) PingAcks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pingAcks
}

// Streams returns a copy of what each stream received, by ID.
func (c *Conn) Streams() map[uint32]Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint32]Stream, len(c.streams))
	for id, s := range c.streams {
		out[id] = *s
	}
	return out
}

// GoAway returns the code of the server's GOAWAY, if it sent one.
func (c *Conn) GoAway() (http2.ErrCode, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goAway == nil {
		return 0, false
	}
	return *c.goAway, true
}

// Wait waits until cond, called with what the streams received, holds, or
// timeout passes; it reports whether cond held.
func (c *Conn) Wait(timeout time.Duration, cond func(map[uint32]Stream) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond(c.Streams()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-c.done:
			return cond(c.Streams())
		}
	}
}
