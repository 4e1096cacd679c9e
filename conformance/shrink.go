package conformance

import (
	"bytes"
	"fmt"
	"iter"
	"strconv"
)

// A shrinker looks for a smaller payload that fails as a case of the sweep
// failed, within a budget of calls and bytes. fails makes the call: it
// says whether the payload came back wrong, or why shrinking must stop
// (the runtime ended, hung, or the run was interrupted).
type shrinker struct {
	fails    func(p []byte) (words, stop string)
	last     []byte // the last payload that failed
	lastWord string // what was wrong with it
	calls    int
	maxCalls int
	sent     int
	maxBytes int
	stopped  string // why shrinking stopped before its budget ran out
}

// The shrinker's default budget: enough to bisect a size of a few MiB
// and to walk a JSON value down to one of its numbers, a fraction of the
// sweep's own bytes.
const (
	shrinkCalls = 100
	shrinkBytes = 16 << 20
)

func newShrinker(fails func([]byte) (words, stop string)) *shrinker {
	return &shrinker{fails: fails, maxCalls: shrinkCalls, maxBytes: shrinkBytes}
}

// try calls with p: failed reports that p failed; ok that it was tried
// (the budget allowed it and nothing stopped shrinking).
func (s *shrinker) try(p []byte) (failed, ok bool) {
	if s.stopped != "" || s.calls >= s.maxCalls || s.sent+len(p) > s.maxBytes {
		return false, false
	}
	s.calls++
	s.sent += len(p)
	words, stop := s.fails(p)
	if stop != "" {
		s.stopped = stop
		return false, false
	}
	if words != "" {
		s.last, s.lastWord = p, words
	}
	return words != "", true
}

// bytes shrinks a failing payload of bytes: its content toward fill
// repeated (0x00, or 'a' for text), its size toward the smallest that
// fails — first the power-of-two boundaries below it (1, 2^k−1, 2^k,
// 2^k+1), then by bisection between the largest that passed and the
// smallest that failed.
func (s *shrinker) bytes(p []byte, fill byte) []byte {
	uniform := bytes.Count(p, []byte{fill}) == len(p)
	if !uniform {
		if f, _ := s.try(bytes.Repeat([]byte{fill}, len(p))); f {
			uniform = true
		}
	}
	of := func(n int) []byte {
		if uniform {
			return bytes.Repeat([]byte{fill}, n)
		}
		return p[:n]
	}
	hi, lo := len(p), 0 // hi fails; lo passed (0: the empty payload is echo.empty's)
	for _, m := range boundariesBelow(hi) {
		f, ok := s.try(of(m))
		if !ok {
			return of(hi)
		}
		if f {
			hi = m
			break
		}
		lo = m
	}
	return of(s.bisect(lo, hi, of))
}

// boundariesBelow lists 1 and the sizes around each power of two below n,
// ascending.
func boundariesBelow(n int) []int {
	out := []int{}
	last := 0
	for p := 1; p-1 < n; p *= 2 {
		for _, m := range []int{p - 1, p, p + 1} {
			if m > last && m < n {
				out = append(out, m)
				last = m
			}
		}
	}
	return out
}

// json shrinks a failing JSON value by its structure: a container of many
// members to its shortest failing run of them (by bisection, as a size);
// then it takes the first smaller value that still fails (a member in
// place of its container, half of a container's members, one member
// fewer, a member shrunk, a string emptied, a number zeroed) until none
// does or the budget runs out.
func (s *shrinker) json(j *jnode) *jnode {
	var bisected *jnode
	for {
		if len(j.kids) > 8 && j != bisected {
			j = s.members(j)
			bisected = j
		}
		var next *jnode
		for c := range j.shrinks() {
			f, ok := s.try(c.encode())
			if !ok {
				return j
			}
			if f {
				next = c
				break
			}
		}
		if next == nil {
			return j
		}
		j = next
	}
}

// members shrinks a failing container to its shortest failing prefix of
// members, then that to its shortest failing suffix, each by bisection
// (a failure that grows with the size is found in O(log n) calls).
func (s *shrinker) members(j *jnode) *jnode {
	// The shortest prefix that fails, then the shortest suffix of it.
	j = j.slice(0, s.bisect(0, len(j.kids), func(m int) []byte { return j.slice(0, m).encode() }))
	n := len(j.kids)
	return j.slice(n-s.bisect(0, n, func(m int) []byte { return j.slice(n-m, n).encode() }), n)
}

// shrinks yields values smaller than j, the smallest kinds first.
func (j *jnode) shrinks() iter.Seq[*jnode] {
	return func(yield func(*jnode) bool) {
		if j.raw != "" {
			switch {
			case j.raw[0] == '"' && j.raw != `""`:
				yield(&jnode{raw: `""`})
			case (j.raw[0] == '-' || (j.raw[0] >= '0' && j.raw[0] <= '9')) && j.raw != "0":
				yield(&jnode{raw: "0"})
			}
			return
		}
		n := len(j.kids)
		if n <= 8 {
			for _, k := range j.kids {
				if !yield(k) {
					return
				}
			}
		}
		if n >= 2 && (!yield(j.slice(0, n/2)) || !yield(j.slice(n/2, n))) {
			return
		}
		if n >= 1 && n <= 64 {
			for i := range j.kids {
				if !yield(j.without(i)) {
					return
				}
			}
		}
		if n <= 32 {
			for i, k := range j.kids {
				for c := range k.shrinks() {
					if !yield(j.with(i, c)) {
						return
					}
				}
			}
		}
	}
}

// slice is j with only its members [a, b).
func (j *jnode) slice(a, b int) *jnode {
	c := &jnode{obj: j.obj, ws: j.ws, kids: j.kids[a:b:b]}
	if j.obj {
		c.keys = j.keys[a:b:b]
	}
	return c
}

// without is j without its member i.
func (j *jnode) without(i int) *jnode {
	c := &jnode{obj: j.obj, ws: j.ws}
	c.kids = append(append(c.kids, j.kids[:i]...), j.kids[i+1:]...)
	if j.obj {
		c.keys = append(append(c.keys, j.keys[:i]...), j.keys[i+1:]...)
	}
	return c
}

// with is j with its member i replaced by k.
func (j *jnode) with(i int, k *jnode) *jnode {
	c := &jnode{obj: j.obj, ws: j.ws, keys: j.keys}
	c.kids = append([]*jnode(nil), j.kids...)
	c.kids[i] = k
	return c
}

// payloadWords describes a payload found by shrinking: "102,400 bytes of
// 0x00", "the JSON 9007199254740993", "1 byte \"a\"".
func payloadWords(p []byte, isJSON bool) string {
	switch {
	case len(p) == 0:
		return "an empty payload"
	case isJSON:
		return fmt.Sprintf("the JSON %s (%s)", quoteClip(p), countBytes(len(p)))
	case len(p) > 1 && bytes.Count(p, p[:1]) == len(p):
		if printable(p[:1]) {
			return fmt.Sprintf("%s of %#02x (%s)", countBytes(len(p)), p[0], strconv.Quote(string(p[:1])))
		}
		return fmt.Sprintf("%s of %#02x", countBytes(len(p)), p[0])
	case len(p) <= 64:
		return fmt.Sprintf("%s %q", countBytes(len(p)), p)
	}
	return fmt.Sprintf("%s starting %q…", countBytes(len(p)), p[:32])
}

// bisect narrows [lo, hi], where at(hi) fails and at(lo) is not known to,
// to the smallest m that fails, in O(log(hi-lo)) calls; it stops early,
// at the smallest found so far, when the shrinker's calls run out.
func (s *shrinker) bisect(lo, hi int, at func(int) []byte) int {
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		f, ok := s.try(at(mid))
		if !ok {
			break
		}
		if f {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}
