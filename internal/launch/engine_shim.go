package launch

// TEMPORARY: the engine branch's stand-in for the launcher API agreed in
// the seam (notes/launch-api.md); replaced by the launch branch at merge.

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Line is one line of output.
type Line struct {
	At     time.Time
	Stream string
	Text   string
	Cut    bool
}

// Lines returns the kept lines (shim: without times).
func (p *Process) Lines(from, to time.Time) []Line {
	var out []Line
	for _, l := range strings.Split(strings.TrimRight(p.Stderr(), "\n"), "\n") {
		if l != "" {
			out = append(out, Line{At: from, Stream: "stderr", Text: l})
		}
	}
	return out
}

// Stopped reports whether the process is stopped.
func (p *Process) Stopped() bool {
	if p.Exited() {
		return false
	}
	st, err := readStat(p.Pid)
	return err == nil && st.State == 'T'
}

// Terminate is the master's stop.
func (p *Process) Terminate(grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
	return false
}

// Survivors lists the launch's live processes.
func (p *Process) Survivors() []Proc {
	var out []Proc
	for _, pid := range p.Leftovers() {
		pr, err := readStat(pid)
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		pr.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		out = append(out, pr)
	}
	return out
}

// Cleanup ends everything.
func (p *Process) Cleanup() []Proc {
	s := p.Survivors()
	p.Kill()
	return s
}

// Sample takes a sample now.
func (p *Process) Sample() { p.sample() }

// SignalName names a signal: SIGTERM.
func SignalName(s syscall.Signal) string { return unix.SignalName(s) }
