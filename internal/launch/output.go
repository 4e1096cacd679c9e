package launch

import (
	"bytes"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// lineOverhead is what a kept line costs beyond its text, so that a flood
// of empty lines is bounded too.
const lineOverhead = 64

// stream is one output stream of a program: the raw tail and the
// time-stamped lines, each bounded by max bytes.
type stream struct {
	name string
	raw  *Ring
	seq  *atomic.Uint64

	mu        sync.Mutex
	max       int
	lines     []seqLine // lines[first:] are kept
	first     int
	lineBytes int
	// The line being read: started when its first byte came, skipping
	// when it was cut and the rest up to the newline is dropped.
	cur      []byte
	curAt    time.Time
	curSeq   uint64
	started  bool
	skipping bool
}

type seqLine struct {
	Line
	seq uint64
}

func newStream(name string, max int, seq *atomic.Uint64) *stream {
	return &stream{name: name, raw: NewRing(max), seq: seq, max: max}
}

func (s *stream) tail() string   { return s.raw.String() }
func (s *stream) written() int64 { return s.raw.Total() }

// write takes b, read at time at.
func (s *stream) write(b []byte, at time.Time) {
	s.raw.Write(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		chunk := b
		if i >= 0 {
			chunk = b[:i]
		}
		if s.skipping {
			if i < 0 {
				return
			}
			s.skipping = false
			b = b[i+1:]
			continue
		}
		if !s.started {
			s.started, s.curAt, s.curSeq = true, at, s.seq.Add(1)
		}
		if room := MaxLineBytes - len(s.cur); len(chunk) > room {
			s.cur = append(s.cur, chunk[:room]...)
			s.emit(true)
			if i < 0 {
				s.skipping = true
				return
			}
			b = b[i+1:]
			continue
		}
		s.cur = append(s.cur, chunk...)
		if i < 0 {
			return
		}
		s.emit(false)
		b = b[i+1:]
	}
}

// eof ends the line being read, if any.
func (s *stream) eof() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		s.emit(false)
	}
	s.skipping = false
}

// emit keeps the current line and drops the oldest ones beyond max.
func (s *stream) emit(cut bool) {
	text := string(bytes.TrimSuffix(s.cur, []byte{'\r'}))
	s.lines = append(s.lines, seqLine{Line{At: s.curAt, Stream: s.name, Text: text, Cut: cut}, s.curSeq})
	s.lineBytes += len(text) + lineOverhead
	s.cur, s.started = s.cur[:0], false
	for s.lineBytes > s.max && len(s.lines)-s.first > 1 {
		s.lineBytes -= len(s.lines[s.first].Text) + lineOverhead
		s.lines[s.first] = seqLine{}
		s.first++
	}
	if s.first > 64 && s.first > len(s.lines)/2 {
		s.lines = append(s.lines[:0], s.lines[s.first:]...)
		s.first = 0
	}
}

// window appends the lines read in [from, to] (to zero: no end).
func (s *stream) window(from, to time.Time, out []seqLine) []seqLine {
	in := func(at time.Time) bool { return !at.Before(from) && (to.IsZero() || !at.After(to)) }
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.lines[s.first:]
	// Lines are kept in read order: skip the older ones quickly.
	i := sort.Search(len(kept), func(i int) bool { return !kept[i].At.Before(from) })
	for _, l := range kept[i:] {
		if !in(l.At) {
			break
		}
		out = append(out, l)
	}
	if s.started && !s.skipping && in(s.curAt) {
		text := string(bytes.TrimSuffix(s.cur, []byte{'\r'}))
		out = append(out, seqLine{Line{At: s.curAt, Stream: s.name, Text: text}, s.curSeq})
	}
	return out
}

// mergeLines returns the lines of the streams in [from, to] in read order.
func mergeLines(from, to time.Time, streams ...*stream) []Line {
	var all []seqLine
	for _, s := range streams {
		if s != nil {
			all = s.window(from, to, all)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	out := make([]Line, len(all))
	for i, l := range all {
		out[i] = l.Line
	}
	return out
}

// Output keeps what a program wrote on stdout and stderr as Process keeps
// it: each stream's raw tail and its lines, time-stamped when read,
// bounded. It is for a launcher that reads a program's output from
// elsewhere (a container's, from its engine); its methods are safe for
// concurrent use.
type Output struct {
	seq atomic.Uint64
	s   [2]*stream
}

// NewOutput keeps up to tailBytes of each stream (0: 64 KiB).
func NewOutput(tailBytes int) *Output {
	if tailBytes <= 0 {
		tailBytes = 64 << 10
	}
	o := &Output{}
	o.s[0] = newStream("stdout", tailBytes, &o.seq)
	o.s[1] = newStream("stderr", tailBytes, &o.seq)
	return o
}

type outputWriter struct{ s *stream }

func (w outputWriter) Write(b []byte) (int, error) {
	w.s.write(b, time.Now())
	return len(b), nil
}

// Stdout and Stderr are writers into each stream: what is written is
// stamped with the time it is written.
func (o *Output) Stdout() io.Writer { return outputWriter{o.s[0]} }
func (o *Output) Stderr() io.Writer { return outputWriter{o.s[1]} }

// Close ends the line each stream was in.
func (o *Output) Close() {
	o.s[0].eof()
	o.s[1].eof()
}

// Lines returns the lines written in [from, to] (to zero: no end), in the
// order they were written.
func (o *Output) Lines(from, to time.Time) []Line { return mergeLines(from, to, o.s[0], o.s[1]) }

// Tails are the ends of stdout and stderr.
func (o *Output) Tails() (stdout, stderr string) { return o.s[0].tail(), o.s[1].tail() }

// Written is how many bytes each stream received.
func (o *Output) Written() (stdout, stderr int64) { return o.s[0].written(), o.s[1].written() }
