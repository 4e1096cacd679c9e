package conformance

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
	"github.com/oe-rt/oe-rt/internal/shellquote"
)

// Container mode (Config.Launcher a runtimeproc.ContainerLauncher): every
// instance is a container, described as Baetyl 1.0's docker engine
// (master/engine/docker) describes one. Its environment is the master's
// variables (mode docker, all three address variables 0.0.0.0:50051, the
// API at unix:///var/run/<era>.sock) and --env, nothing of conform's own;
// its command is the runtime's ARGS (the image's entrypoint runs them);
// the configuration is bind-mounted read-only at /etc/<era>/service.yml
// (with the files beside it), each codedir it names at /<codedir>, and
// the master API's socket at /var/run/<era>.sock. The working directory
// the native mode lays out does not apply: the image's WORKDIR is the
// runtime's.

// contained reports whether the runtime's instances are containers.
func (r *runner) contained() bool {
	_, ok := r.launcher.(runtimeproc.ContainerLauncher)
	return ok
}

// containerSocket is where the master API's socket is in a container.
func containerSocket(era string) string { return "/var/run/" + era + ".sock" }

// containerConfigPath is where the configuration is in a container: the
// era's path under /.
func containerConfigPath(era string) string { return "/" + configPath(era) }

// containerInstance describes an instance for a container launcher.
func (r *runner) containerInstance(o instanceOpts, name, addr string) (runtimeproc.Instance, error) {
	e, err := r.master.eraWith(o.era, o.config) // the API's socket
	if err != nil {
		return runtimeproc.Instance{}, err
	}
	sock := containerSocket(o.era)
	in := convention.Instance{Era: o.era, Service: serviceName, Name: name, Address: addr, MasterAPI: e.api, Mode: "docker"}
	if o.era == convention.EraBaetyl {
		in.MasterSocket = sock
		in.HostID = hostID()
	}
	env := convention.InstanceEnv(nil, in, r.cfg.Env)
	if o.addrVar != "" {
		env = onlyAddress(env, o.addrVar, addr)
	}
	config := r.cfg.ConfigFile
	if o.config != "" {
		config = o.config
	}
	args := r.cfg.Command[1:]
	if o.args != nil {
		args = o.args
	}
	return runtimeproc.Instance{Name: name, Listen: addr, Service: serviceName,
		Mounts: r.containerMounts(o.era, config, e.sock),
		Spec:   launch.Spec{Env: env, Args: args}}, nil
}

// containerMounts are the binds of an instance: the configuration (and
// the files beside it), the codedirs it names that --dir holds, the API
// socket; all read-only.
func (r *runner) containerMounts(era, config, sock string) []runtimeproc.Mount {
	var ms []runtimeproc.Mount
	if config != "" {
		ms = append(ms, runtimeproc.Mount{Source: config, Target: containerConfigPath(era), ReadOnly: true})
		if config == r.cfg.ConfigFile {
			dir := filepath.Dir(config)
			if ents, err := os.ReadDir(dir); err == nil {
				for _, ent := range ents {
					if n := ent.Name(); n != filepath.Base(config) && n != "service.yml" {
						ms = append(ms, runtimeproc.Mount{Source: filepath.Join(dir, n), Target: path.Join(path.Dir(containerConfigPath(era)), n), ReadOnly: true})
					}
				}
			}
		}
		for _, d := range codeDirs(config) {
			if _, err := os.Stat(filepath.Join(r.master.src, d)); err == nil {
				ms = append(ms, runtimeproc.Mount{Source: filepath.Join(r.master.src, d), Target: "/" + d, ReadOnly: true})
			}
		}
	}
	return append(ms, runtimeproc.Mount{Source: sock, Target: containerSocket(era), ReadOnly: true})
}

// listensOn reports whether a listening address a is the instance's own:
// the address it was given, or, in a container, any wildcard on its port
// (0.0.0.0 and [::] both take the container's address).
func (inst *instance) listensOn(a string) bool {
	if a == inst.listen {
		return true
	}
	if !inst.r.contained() {
		return false
	}
	host, port, err := net.SplitHostPort(a)
	_, want, err2 := net.SplitHostPort(inst.listen)
	ip := net.ParseIP(host)
	return err == nil && err2 == nil && port == want && ip != nil && ip.IsUnspecified()
}

// containerListenHint says why a runtime that listens elsewhere in its
// container cannot be reached.
func (r *runner) containerListenHint() string {
	if !r.contained() {
		return ""
	}
	return fmt.Sprintf(". In its container the runtime must listen on the address it is given (%s): the function manager calls <instance>:%s on the master's network, "+
		"and a socket bound to 127.0.0.1 or to a port of the runtime's own is not reachable from there", ContainerListen, containerPort)
}

// ContainerListen is the address every instance is given in container
// mode, as the master's docker mode gives it.
const ContainerListen = "0.0.0.0:50051"

const containerPort = "50051"

// sigtermCaught reports whether process pid catches SIGTERM (SigCgt of
// /proc/PID/status), and whether it could tell.
func sigtermCaught(pid int) (caught, known bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			var mask uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &mask); err != nil {
				return false, false
			}
			return mask&(1<<(uint(syscall.SIGTERM)-1)) != 0, true
		}
	}
	return false, false
}

// pid1Words names a container's first process for messages:
// "/bin/sh -c ./runtime (pid 1234 on the host)".
func pid1Words(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if err != nil || cmd == "" {
		return fmt.Sprintf("pid %d on the host", pid)
	}
	if len(cmd) > 200 {
		cmd = cmd[:200] + "…"
	}
	return fmt.Sprintf("%q (pid %d on the host)", cmd, pid)
}

// pid1NoSigterm is the cause of a container that SIGTERM did not stop.
const pid1NoSigterm = "as PID 1 your process has no default action for SIGTERM: handle it, or `exec` from your entrypoint script, or run under an init"

// containerReport adds the image and the time from create to the first
// answer, in container mode.
func (r *runner) containerReport(rt *Runtime) {
	cl, ok := r.launcher.(runtimeproc.ContainerLauncher)
	if !ok {
		return
	}
	img := cl.Image()
	user := img.User
	if user == "" {
		user = "root (the image sets no USER)"
	}
	rt.Image = &ImageReport{Name: img.Name, ID: img.ID, Size: img.Size, Entrypoint: img.Entrypoint, Cmd: img.Cmd, User: user, WorkingDir: img.WorkingDir}
	if n, ok := r.launcher.(interface{ Network() string }); ok {
		rt.Image.Network = n.Network()
	}
	c, ok := r.first.proc.(runtimeproc.Created)
	if !ok {
		return
	}
	if fc := r.first.firstAnswer(); fc > 0 {
		v := ms(r.first.proc.StartTime().Add(fc).Sub(c.Created()))
		rt.CreateToAnswerMS = &v
	}
}

// containerByHand is a docker run that starts the image as conform did,
// its port published on the reproduce lines' address.
func (r *runner) containerByHand() string {
	era := string(r.cfg.Profile)
	name := instanceName(r.cfg, 1)
	_, port, _ := net.SplitHostPort(ReproAddress)
	parts := []string{"docker", "run", "--rm", "--init=false", "--restart", "no",
		"--memory", strconv.FormatInt(r.cfg.MemoryLimit, 10), "--pids-limit", strconv.Itoa(r.cfg.ThreadLimit),
		"-p", "127.0.0.1:" + port + ":" + containerPort}
	in := convention.Instance{Era: era, Service: serviceName, Name: name, Address: ContainerListen, Mode: "docker"}
	for _, kv := range convention.InstanceEnv(nil, in, r.cfg.Env) {
		parts = append(parts, "-e", shellquote.Quote(kv))
	}
	if r.cfg.ConfigFile != "" {
		parts = append(parts, "-v", shellquote.Quote(r.cfg.ConfigFile+":"+containerConfigPath(era)+":ro"))
	}
	return strings.Join(append(parts, shellquote.Join(r.cfg.Command)), " ")
}
