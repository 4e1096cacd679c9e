package launch

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Start starts the program described by spec: in a process group of its
// own, in a tracking cgroup where the machine allows, with SIGKILL as its
// parent-death signal, stdin /dev/null, stdout and stderr read all the
// time. A program that cannot be started gives a *StartError (ErrStart).
func Start(spec Spec) (*Process, error) {
	h, err := current()
	if err != nil {
		return nil, &StartError{Path: spec.Path, Reason: err.Error()}
	}
	path, err := resolve(spec)
	if err != nil {
		return nil, err
	}
	if err := checkScript(spec, path); err != nil {
		return nil, err
	}
	p := h.newProcess(spec)
	if err := p.makeCgroups(spec); err != nil {
		return nil, err
	}
	res, err := p.spawn(spec, path)
	if err != nil {
		p.abandon()
		var le *LimitError
		if res.err == nil || errors.As(err, &le) {
			return nil, err
		}
		return nil, diagnose(spec, path, err)
	}
	p.begin(res)
	return p, nil
}

// newProcess is a launch of spec, before anything is made for it.
func (h *host) newProcess(spec Spec) *Process {
	tail := spec.TailBytes
	if tail <= 0 {
		tail = 64 << 10
	}
	every := spec.SampleEvery
	if every <= 0 {
		every = 20 * time.Millisecond
	}
	p := &Process{cookie: h.newCookie(), done: make(chan struct{})}
	p.out[0] = newStream("stdout", tail, &p.seq)
	p.out[1] = newStream("stderr", tail, &p.seq)
	p.sys.h = h
	p.sys.known = map[int]uint64{}
	p.sys.every = every
	return p
}

// makeCgroups makes the launch's limit cgroups (Spec.Limits: a
// *LimitError when they cannot be made) and its tracking cgroup — inside
// the v2 limit cgroup, or Spec.CgroupFD, when there is one; none, with a
// note saying why, where the machine does not allow it.
func (p *Process) makeCgroups(spec Spec) error {
	s, ch := &p.sys, p.sys.h.cgroups
	if l := spec.Limits; l != nil && (l.Memory > 0 || l.Tasks > 0) {
		if l.Memory < 0 || l.Tasks < 0 {
			return &LimitError{Reason: fmt.Sprintf("negative limits (memory %d, tasks %d)", l.Memory, l.Tasks)}
		}
		lim, err := ch.newLimits(*l)
		if err != nil {
			return err
		}
		s.lim = lim
	}
	parentFD := spec.CgroupFD
	if v2, ok := s.lim.(*v2Cgroups); ok {
		parentFD = v2.fd
	}
	s.track, s.note = ch.newTracking(parentFD, s.lim != nil && s.lim.Version() == 1)
	return nil
}

// spawn starts the program: its standard files, the master's stand-in
// (Spec.MasterGroup), then the fork. An error with res.err set is the
// fork's, for diagnose.
func (p *Process) spawn(spec Spec, path string) (res forkResult, err error) {
	s := &p.sys
	null, err := os.Open(os.DevNull)
	if err != nil {
		return res, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	defer null.Close()
	w, err := p.pipes()
	if err != nil {
		return res, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	defer func() { w[0].Close(); w[1].Close() }()
	sys := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if spec.MasterGroup {
		if s.standIn, err = s.h.startStandIn(); err != nil {
			return res, err
		}
		sys.Pgid = s.standIn.proc.Pid
	}
	argv0 := spec.Argv0
	if argv0 == "" {
		argv0 = spec.Path
	}
	res = p.fork(forkJob{
		path: path,
		argv: append([]string{argv0}, spec.Args...),
		attr: &os.ProcAttr{Dir: spec.Dir, Env: environment(spec.Env, p.cookie), Files: []*os.File{null, w[0], w[1]}, Sys: sys},
	}, spec.CgroupFD)
	return res, res.err
}

// pipes makes the program's stdout and stderr: the read ends are the
// launch's, the write ends returned for the fork.
func (p *Process) pipes() (w [2]*os.File, err error) {
	for i := range w {
		r, wr, err := os.Pipe()
		if err != nil {
			if w[0] != nil {
				w[0].Close()
			}
			return w, err
		}
		p.sys.files[i], w[i] = r, wr
	}
	return w, nil
}

// fork forks the program in the launch's cgroups, the guard told of the
// launch first: if this process dies at any moment from here, the guard
// ends what is in the cgroups. A tracking cgroup the program could not be
// born in is given up, with a note.
func (p *Process) fork(job forkJob, cgroupFD int) forkResult {
	s, h := &p.sys, p.sys.h
	s.applyCgroups(&job, cgroupFD, true)
	s.guardNote = h.guardAdd(p)
	h.reg.Lock()
	res := h.forker.fork(job)
	if res.err != nil && s.track != nil && s.track.Version() == 2 {
		// The kernel may refuse the cgroup (one that takes no processes):
		// try once without it. (A program that cannot be started fails
		// twice, the same way.)
		first := res.err
		s.applyCgroups(&job, cgroupFD, false)
		if res = h.forker.fork(job); res.err == nil {
			res.cgErr = fmt.Errorf("clone into it: %w", first)
		}
	}
	if res.err == nil {
		h.reg.direct[res.proc.Pid] = true
		h.reg.live[p] = true
	}
	h.reg.Unlock()
	if res.err != nil {
		h.guardForget(p)
		return res
	}
	if res.cgErr != nil && s.track != nil {
		s.note = fmt.Sprintf("no tracking cgroup (%s: %v)", s.track.Paths()[0].dir, res.cgErr)
		_ = s.track.Destroy(time.Now())
		s.track = nil
	}
	return res
}

// applyCgroups readies job for the launch's cgroups: cloned into
// cgroupFD (Spec.CgroupFD) unless a cgroup of the launch says otherwise,
// in the limit cgroups, and, with tracking, in the tracking cgroup.
func (s *procSys) applyCgroups(j *forkJob, cgroupFD int, tracking bool) {
	j.attr.Sys.UseCgroupFD, j.attr.Sys.CgroupFD = cgroupFD > 0, cgroupFD
	j.joins = nil
	if s.lim != nil {
		s.lim.Apply(j)
	}
	if tracking && s.track != nil {
		s.track.Apply(j)
	}
}

// abandon undoes what Start made for a program that did not start.
func (p *Process) abandon() {
	s := &p.sys
	p.closeFiles()
	if s.standIn != nil {
		s.standIn.close()
	}
	for _, m := range s.cgroups() {
		_ = m.Destroy(time.Now().Add(time.Second))
	}
}

// begin watches the program that started: its output read, its end
// awaited, its first sample taken and the sampler running.
func (p *Process) begin(res forkResult) {
	s := &p.sys
	s.proc, p.Pid, p.Started = res.proc, res.proc.Pid, res.started
	s.pgid = p.Pid
	if s.standIn != nil {
		s.pgid = s.standIn.proc.Pid
	}
	if st, err := readStat(p.Pid); err == nil {
		s.startTicks = st.Start
	} else {
		s.startTicks = ticksNow() - 1
	}
	s.h.guardSend(fmt.Sprintf("P %s %d %d\n", p.cookie, p.Pid, s.startTicks))

	for i := range s.files {
		s.flush[i] = make(chan chan struct{}, 1)
		s.readerDone[i] = make(chan struct{})
		s.readers.Add(1)
		go p.drain(i)
	}
	go p.wait()
	s.stopS, s.samplerDone = make(chan struct{}), make(chan struct{})
	p.Sample()
	go p.sampleLoop()
}

// environment is env with later entries winning, less the launcher's own
// variables, plus the launch marker (added to one inherited, so that a
// launcher started by a launcher keeps both).
func environment(env []string, token string) []string {
	idx := map[string]int{}
	var out []string
	inherited := ""
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case guardEnv:
			continue
		case CookieEnv:
			inherited = v
			continue
		}
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	if inherited != "" {
		token = inherited + "," + token
	}
	return append(out, CookieEnv+"="+token)
}

// resolve finds the program: in PATH for a bare name, else made absolute
// against this process's working directory.
func resolve(spec Spec) (string, error) {
	if spec.Path == "" {
		return "", &StartError{Path: `""`, Reason: "no program given"}
	}
	if !strings.Contains(spec.Path, "/") {
		lp, err := exec.LookPath(spec.Path)
		if err != nil && !errors.Is(err, exec.ErrDot) {
			return "", &StartError{Path: spec.Path, Reason: fmt.Sprintf("no executable named %q in PATH", spec.Path), Err: err}
		}
		if abs, err := filepath.Abs(lp); err == nil {
			lp = abs
		}
		return lp, nil
	}
	abs, err := filepath.Abs(spec.Path)
	if err != nil {
		return "", fmt.Errorf("start %s: %w", spec.Path, err)
	}
	return abs, nil
}

// shebang is a script's #! line as the kernel reads it: the first 256
// bytes, the interpreter up to a blank, the rest one argument.
type shebang struct {
	interp, arg string
	crlf        bool
}

func readShebang(path string) (sb shebang, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return sb, false
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := io.ReadFull(f, buf)
	buf = buf[:n]
	if !bytes.HasPrefix(buf, []byte("#!")) {
		return sb, false
	}
	line := buf[2:]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	sb.crlf = bytes.HasSuffix(line, []byte{'\r'})
	s := strings.TrimLeft(string(line), " \t")
	sb.interp, sb.arg, _ = strings.Cut(s, " ")
	if i := strings.IndexByte(sb.interp, '\t'); i >= 0 {
		sb.interp, sb.arg = sb.interp[:i], sb.interp[i+1:]+" "+sb.arg
	}
	sb.arg = strings.Trim(sb.arg, " \t")
	return sb, true
}

// checkScript refuses, before starting it, a script whose #! line runs
// "env NAME" with no NAME in the program's PATH: env would exit 127 after
// the start, where the cause is easy to miss.
func checkScript(spec Spec, path string) error {
	sb, ok := readShebang(path)
	if !ok || sb.crlf || filepath.Base(sb.interp) != "env" || sb.arg == "" || strings.HasPrefix(sb.arg, "-") || strings.ContainsAny(sb.arg, " \t=") {
		return nil
	}
	name := sb.arg
	pathVar := "/bin:/usr/bin" // execvp's default
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	if strings.Contains(name, "/") {
		return nil
	}
	for _, d := range filepath.SplitList(pathVar) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) && spec.Dir != "" {
			d = filepath.Join(spec.Dir, d)
		}
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return nil
		}
	}
	return &StartError{Path: spec.Path, Reason: fmt.Sprintf("bad interpreter: the #! line of %s runs %q, and there is no %s in the program's PATH (%s)", spec.Path, sb.interp+" "+name, name, pathVar), Err: fs.ErrNotExist}
}

// diagnose turns a failed start into an error that names the cause.
func diagnose(spec Spec, path string, err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("start %s: %w", spec.Path, err)
	}
	se := startErr(func(format string, a ...any) error {
		return &StartError{Path: spec.Path, Reason: fmt.Sprintf(format, a...), Err: err}
	})
	// The child reports a failed chdir as the exec's error: look at the
	// directory first.
	if e := diagnoseDir(spec, err, errno, se); e != nil {
		return e
	}
	switch errno {
	case syscall.ENOENT:
		return diagnoseMissing(spec, path, se)
	case syscall.EACCES:
		return diagnoseDenied(spec, path, se)
	case syscall.ENOEXEC:
		if b, err := os.ReadFile(path); err == nil && bytes.HasPrefix(b, []byte("\xef\xbb\xbf#!")) {
			return se("the file starts with a byte-order mark before its #! line; save it as UTF-8 without BOM")
		}
		return se("not a program this machine can run (no #! line, and not an executable for %s/%s)", runtime.GOOS, runtime.GOARCH)
	case syscall.ENOTDIR:
		return se("a component of %s is not a directory", path)
	case syscall.ETXTBSY:
		return se("the file is open for writing (text file busy)")
	case syscall.E2BIG:
		return se("arguments and environment too long")
	case syscall.ELOOP, syscall.ENAMETOOLONG:
		return se("%v", errno)
	}
	return fmt.Errorf("start %s: %w", spec.Path, err)
}

// startErr makes a *StartError of a failed start from its reason.
type startErr func(format string, a ...any) error

// diagnoseDir names a working directory that is missing or was refused;
// nil when the directory is not the cause.
func diagnoseDir(spec Spec, err error, errno syscall.Errno, se startErr) error {
	if spec.Dir == "" {
		return nil
	}
	var pe *os.PathError
	fi, derr := os.Stat(spec.Dir)
	switch {
	case errors.Is(derr, fs.ErrNotExist):
		return se("working directory %s: no such directory", spec.Dir)
	case derr != nil:
		return se("working directory %s: %v", spec.Dir, derr)
	case !fi.IsDir():
		return se("working directory %s: not a directory", spec.Dir)
	case errors.As(err, &pe) && pe.Op == "chdir":
		return se("working directory %s: %v", spec.Dir, errno)
	}
	return nil
}

// diagnoseMissing names what is missing when the exec says ENOENT: the
// file, the interpreter of its #! line, or its dynamic loader.
func diagnoseMissing(spec Spec, path string, se startErr) error {
	if _, err := os.Stat(path); err != nil {
		if path != spec.Path {
			return se("no such file (%s)", path)
		}
		return se("no such file")
	}
	if sb, ok := readShebang(path); ok {
		if sb.crlf {
			return se("the #! line of %s ends in CRLF (Windows line endings), so the system looks for an interpreter named %q; convert the file to LF line endings", spec.Path, strings.TrimSuffix(sb.interp+" "+sb.arg, " ")+"\r")
		}
		return se("bad interpreter %s (named in the #! line of %s): no such file", sb.interp, spec.Path)
	}
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				b, _ := io.ReadAll(prog.Open())
				interp := strings.TrimRight(string(b), "\x00")
				return se("its dynamic loader %s is missing (a program built for another system? build it statically)", interp)
			}
		}
	}
	return se("no such file or directory (%s)", path)
}

// diagnoseDenied names why the exec says EACCES: a directory on the way,
// a directory or a file without x, an interpreter that is not executable,
// or a file system mounted noexec.
func diagnoseDenied(spec Spec, path string, se startErr) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return se("permission denied (a directory on the way to %s cannot be searched)", path)
	case fi.IsDir():
		return se("%s is a directory, not a program", spec.Path)
	case fi.Mode()&0o111 == 0:
		return se("not executable (mode %v; chmod +x %s)", fi.Mode().Perm(), spec.Path)
	}
	if sb, ok := readShebang(path); ok {
		if ifi, err := os.Stat(sb.interp); err == nil && (ifi.IsDir() || ifi.Mode()&0o111 == 0) {
			return se("bad interpreter %s (named in the #! line of %s): not executable", sb.interp, spec.Path)
		}
	}
	return se("permission denied (a file system mounted noexec?)")
}

// ticksNow is the time since boot in clock ticks, as /proc/PID/stat's
// start times.
func ticksNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Sec)*clockTicks + uint64(ts.Nsec)*clockTicks/1e9
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100
