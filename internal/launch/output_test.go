package launch

import (
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRingKeepsTheTail(t *testing.T) {
	r := NewRing(8)
	r.Write([]byte("abcdef"))
	r.Write([]byte("ghij"))
	assert.Equal(t, "cdefghij", r.String())
	r.Write([]byte("0123456789"))
	assert.Equal(t, "23456789", r.String())
	assert.Equal(t, int64(20), r.Total())
}

func texts(ls []Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Stream+":"+l.Text)
	}
	return out
}

// Lines are split across writes, stamped with the read of their first
// byte, cut at MaxLineBytes, and a line still open is shown as it is.
func TestStreamLines(t *testing.T) {
	var seq atomic.Uint64
	out, errs := newStream("stdout", 64<<10, &seq), newStream("stderr", 64<<10, &seq)
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	out.write([]byte("one\ntw"), at(0))
	errs.write([]byte("err\r\n"), at(1))
	out.write([]byte("o\n"), at(2))
	out.write([]byte(strings.Repeat("x", 3*MaxLineBytes)), at(3))
	out.write([]byte(strings.Repeat("x", 64<<10)+"\nafter\nopen"), at(4))

	all := mergeLines(time.Time{}, time.Time{}, out, errs)
	require.Len(t, all, 6)
	assert.Equal(t, []string{"stdout:one", "stdout:two", "stderr:err", "stdout:" + strings.Repeat("x", MaxLineBytes), "stdout:after", "stdout:open"}, texts(all))
	assert.Equal(t, at(0), all[1].At, "a line is stamped with its first byte")
	assert.True(t, all[3].Cut)
	assert.False(t, all[4].Cut)
	assert.Equal(t, at(4), all[4].At)
	assert.Equal(t, []string{"stderr:err"}, texts(mergeLines(at(1), at(1), out, errs)))
	assert.Equal(t, []string{"stdout:" + strings.Repeat("x", MaxLineBytes)}, texts(mergeLines(at(3), at(3), out, errs)))
	out.eof()
	assert.Equal(t, "stdout:open", texts(mergeLines(at(4), time.Time{}, out))[1], "the open line is kept at EOF")
}

// The rings stay within TailBytes, whatever is written, keeping the
// newest lines.
func TestStreamBounded(t *testing.T) {
	var seq atomic.Uint64
	s := newStream("stdout", 4096, &seq)
	for i := 0; i < 10000; i++ {
		s.write([]byte("a line of output\n"), time.Now())
	}
	s.write([]byte("\n\n\n\n\n\n\n\n\n\n"), time.Now())
	s.write([]byte("last\n"), time.Now())
	ls := mergeLines(time.Time{}, time.Time{}, s)
	total := 0
	for _, l := range ls {
		total += len(l.Text) + lineOverhead
	}
	assert.LessOrEqual(t, total, 4096)
	assert.Equal(t, "last", ls[len(ls)-1].Text)
	assert.LessOrEqual(t, len(s.tail()), 4096)
	assert.Equal(t, int64(10000*17+10+5), s.written())
	assert.LessOrEqual(t, len(s.lines), 2*4096/lineOverhead+64, "dropped lines are released")
}

func TestExitString(t *testing.T) {
	for _, c := range []struct {
		e    Exit
		want string
	}{
		{Exit{Code: 3}, "exit status 3"},
		{Exit{Code: 0}, "exit status 0"},
		{Exit{Code: -1, Signal: syscall.Signal(9)}, "killed by SIGKILL"},
		{Exit{Code: -1, Signal: syscall.Signal(15)}, "terminated by SIGTERM (default action)"},
		{Exit{Code: -1, Signal: syscall.Signal(2)}, "terminated by SIGINT (default action)"},
		{Exit{Code: -1, Signal: syscall.Signal(11), Core: true}, "killed by SIGSEGV (core dumped)"},
		{Exit{Code: -1, Signal: syscall.Signal(11)}, "killed by SIGSEGV"},
		{Exit{Code: -1, Signal: syscall.Signal(6), Core: true}, "killed by SIGABRT (core dumped)"},
	} {
		assert.Equal(t, c.want, c.e.String())
	}
}
