package launch

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EnableSubreaper makes the calling process a child subreaper, so that
// orphaned descendants are re-parented to it rather than to init, where the
// launcher finds, reports, ends and reaps them. Process-wide: call it once,
// from the command layer or a test's TestMain.
func EnableSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}
	return nil
}

// isSubreaper reports whether this process is a child subreaper.
func isSubreaper() bool {
	var v int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0)
	return err == nil && v != 0
}

func readStat(pid int) (Proc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Proc{}, err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Proc{}, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return Proc{}, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	p := Proc{Pid: pid, State: f[0][0]}
	p.PPid, _ = strconv.Atoi(f[1])
	p.pgid, _ = strconv.Atoi(f[2])
	p.sid, _ = strconv.Atoi(f[3])
	p.Threads, _ = strconv.Atoi(f[17])
	p.Start, _ = strconv.ParseUint(f[19], 10, 64)
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	p.RSS = pages * int64(os.Getpagesize())
	return p, nil
}

// readRSS reads the resident set of pid split by kind (RssAnon, RssFile,
// RssShmem of /proc/PID/status), and its peak resident set since its last
// exec (VmHWM, kept by the kernel); zero when it cannot.
func readRSS(pid int) (r RSS, hwm int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return r, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.HasPrefix(k, "Rss") && k != "VmHWM" {
			continue
		}
		f := strings.Fields(v) // "1234 kB"
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "RssAnon":
			r.Anon = n << 10
		case "RssFile":
			r.File = n << 10
		case "RssShmem":
			r.Shmem = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return r, hwm
}

// All lists every process.
func All() []Proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make([]Proc, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readStat(pid); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Tree returns root and its descendants (by parent links; zombies
// included, with no memory).
func Tree(root int) []Proc {
	all := All()
	kids := map[int][]Proc{}
	var rootP *Proc
	for i := range all {
		kids[all[i].PPid] = append(kids[all[i].PPid], all[i])
		if all[i].Pid == root {
			rootP = &all[i]
		}
	}
	if rootP == nil {
		return nil
	}
	out := []Proc{*rootP}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i].Pid]...)
	}
	return out
}

// Exists reports whether pid is the process that started at start (zombies
// included).
func Exists(pid int, start uint64) bool {
	p, err := readStat(pid)
	return err == nil && (start == 0 || p.Start == start)
}

// Alive reports whether pid is the process that started at start and has
// not exited (not a zombie).
func Alive(pid int, start uint64) bool {
	p, err := readStat(pid)
	return err == nil && (start == 0 || p.Start == start) && p.State != 'Z' && p.State != 'X'
}

// Listeners returns the TCP addresses the given processes listen on, each
// read in the process's own network namespace (/proc/PID/net/tcp: a
// container's processes have one of their own).
func Listeners(pids []int) ([]string, error) {
	inodes := map[string]bool{}
	nets := map[string]int{} // network namespace -> a process in it
	var order []string
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to read
		}
		ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if err != nil {
			ns = "self"
		}
		if _, ok := nets[ns]; !ok {
			nets[ns] = pid
			order = append(order, ns)
		}
		for _, e := range ents {
			l, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	if len(order) == 0 {
		order, nets = []string{"self"}, map[string]int{"self": 0}
	}
	var out []string
	for _, ns := range order {
		base := "/proc/net/"
		if pid := nets[ns]; ns != "self" && pid > 0 {
			base = "/proc/" + strconv.Itoa(pid) + "/net/"
		}
		for _, f := range []string{"tcp", "tcp6"} {
			addrs, err := listening(base+f, inodes)
			if err != nil && f == "tcp" {
				if base != "/proc/net/" {
					continue // the process is gone
				}
				return nil, err
			}
			out = append(out, addrs...)
		}
	}
	return out, nil
}

func listening(file string, inodes map[string]bool) ([]string, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
			continue
		}
		if a, err := parseHexAddr(f[1]); err == nil {
			out = append(out, a)
		}
	}
	return out, sc.Err()
}

// parseHexAddr decodes /proc/net/tcp's "0100007F:1F90" form.
func parseHexAddr(s string) (string, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	b, err := hex.DecodeString(host)
	if err != nil {
		return "", err
	}
	// The kernel prints each 32-bit word in host (little-endian) order.
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(net.IP(b).String(), strconv.Itoa(int(p))), nil
}

// Marked lists the processes whose environment holds the entry kv
// ("K=V"), read from /proc/PID/environ (processes of other users are not
// readable and are passed over).
func Marked(kv string) []Proc {
	want := []byte(kv)
	var out []Proc
	for _, p := range All() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/environ")
		if err != nil {
			continue
		}
		for _, e := range bytes.Split(b, []byte{0}) {
			if bytes.Equal(e, want) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// cmdline returns pid's argv joined with spaces, or its command name in
// brackets when argv is empty (a kernel thread, a zombie).
func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err == nil {
		if s := strings.TrimSpace(strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")); s != "" {
			return s
		}
	}
	c, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "[?]"
	}
	return "[" + strings.TrimSpace(string(c)) + "]"
}

// children returns the PIDs of pid's children, from
// /proc/PID/task/*/children (every thread's).
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// hasToken reports whether pid's environment marks it with the launch
// token (CookieEnv holds a comma-separated list of tokens).
func hasToken(pid int, token string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	prefix := []byte(CookieEnv + "=")
	for _, e := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(e, prefix); ok {
			for _, t := range bytes.Split(v, []byte{','}) {
				if string(t) == token {
					return true
				}
			}
		}
	}
	return false
}
