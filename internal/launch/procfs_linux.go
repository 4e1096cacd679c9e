package launch

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	bp := procBufs.Get().(*[]byte)
	defer procBufs.Put(bp)
	b, err := readProc(procPath(pid, "stat"), bp)
	if err != nil {
		return Proc{}, err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Proc{}, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	// The fields after the name, counted from 0 (the state): 1 ppid,
	// 2 pgrp, 3 session, 17 num_threads, 19 starttime, 21 rss (pages).
	var f [22][]byte
	n := 0
	for rest := b[i+1:]; n < len(f); n++ {
		rest = bytes.TrimLeft(rest, " \n")
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
	}
	if n < len(f) {
		return Proc{}, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	p := Proc{Pid: pid, State: f[0][0]}
	p.PPid = atoi(f[1])
	p.pgid = atoi(f[2])
	p.sid = atoi(f[3])
	p.Threads = atoi(f[17])
	p.Start = uint64(atoi(f[19]))
	p.RSS = int64(atoi(f[21])) * int64(pageSize)
	return p, nil
}

var pageSize = os.Getpagesize()

// atoi parses a decimal field of /proc (an optional minus sign, digits);
// 0 when it is not one, as strconv.Atoi's error was ignored.
func atoi(b []byte) int {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

// procPath is /proc/PID/name.
func procPath(pid int, name string) string {
	var b [48]byte
	out := append(b[:0], "/proc/"...)
	out = strconv.AppendInt(out, int64(pid), 10)
	out = append(out, '/')
	out = append(out, name...)
	return string(out)
}

// procBufs holds the buffers /proc files are read into: the sampler reads
// dozens of small files every 20 ms for every launch.
var procBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readProc reads a /proc file whole into *bp (grown as needed) with plain
// system calls: open, read until the end, close. os.ReadFile would also
// stat the file, try to register it with the poller and allocate an
// *os.File with a finalizer, which is most of the cost of reading a file
// of a few hundred bytes; the sampler reads thousands of them a second.
// The result aliases *bp.
func readProc(path string, bp *[]byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			*bp = b
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			*bp = b
			return b, nil
		}
		b = b[:len(b)+n]
	}
}

// readRSS reads the resident set of pid split by kind (RssAnon, RssFile,
// RssShmem of /proc/PID/status), and its peak resident set since its last
// exec (VmHWM, kept by the kernel); zero when it cannot.
func readRSS(pid int) (r RSS, hwm int64) {
	bp := procBufs.Get().(*[]byte)
	defer procBufs.Put(bp)
	b, err := readProc(procPath(pid, "status"), bp)
	if err != nil {
		return r, 0
	}
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte{'\n'})
		k, v, ok := bytes.Cut(l, []byte{':'})
		if !ok || !bytes.HasPrefix(k, []byte("Rss")) && string(k) != "VmHWM" {
			continue
		}
		v = bytes.TrimLeft(v, " \t") // "1234 kB"
		if end := bytes.IndexByte(v, ' '); end >= 0 {
			v = v[:end]
		}
		if len(v) == 0 || atoi(v) == 0 && string(v) != "0" {
			continue
		}
		n := int64(atoi(v))
		switch string(k) {
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
	names, err := readDirNames("/proc")
	if err != nil {
		return nil
	}
	sort.Strings(names) // in os.ReadDir's order
	out := make([]Proc, 0, len(names))
	for _, name := range names {
		pid, err := strconv.Atoi(name)
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
// included, with no memory). It walks down from root through each
// process's children (/proc/PID/task/*/children, every thread's) rather
// than reading every process of the machine: a few files for a runtime's
// tree, where All reads one for each of the machine's processes. A child
// is kept only when its own stat names its parent, as All's links do.
func Tree(root int) []Proc {
	rootP, err := readStat(root)
	if err != nil {
		return nil
	}
	out := []Proc{rootP}
	seen := map[int]bool{root: true}
	for i := 0; i < len(out); i++ {
		kids := children(out[i].Pid)
		sort.Ints(kids) // in All's order: by PID
		for _, c := range kids {
			if seen[c] {
				continue
			}
			if st, err := readStat(c); err == nil && st.PPid == out[i].Pid {
				seen[c] = true
				out = append(out, st)
			}
		}
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
	dir := procPath(pid, "task")
	tasks, err := readDirNames(dir)
	if err != nil {
		return nil
	}
	bp := procBufs.Get().(*[]byte)
	defer procBufs.Put(bp)
	var out []int
	for _, t := range tasks {
		b, err := readProc(dir+"/"+t+"/children", bp)
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c := atoi(f); c > 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

// readDirNames lists a /proc directory's entries, unsorted, with plain
// system calls (see readProc).
func readDirNames(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	bp := procBufs.Get().(*[]byte)
	defer procBufs.Put(bp)
	buf := (*bp)[:cap(*bp)]
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
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
