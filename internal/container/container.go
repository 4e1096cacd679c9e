// Package container starts runtime instances as containers, the way
// Baetyl 1.0's docker engine (baetyl/baetyl 1.0.0, master/engine/docker)
// starts a function instance: through the Docker Engine API, from an image
// already on the engine, named as the instance, on a user-defined network,
// restart policy "no", no init, the memory, swap, pids and CPU limits
// always given, the service's configuration, code and the master API
// socket bind-mounted read-only; stopped with ContainerStop (SIGTERM to
// its first process, SIGKILL after the grace period), then removed.
//
// Everything a Launcher makes (containers, its network) carries the label
// LabelOwner with the owning process's PID and start time: Close removes
// them, and New removes what an earlier owner that is gone (killed before
// it could clean up) left.
//
// A Launcher is a runtimeproc.Launcher: its instances are
// runtimeproc.Process values whose PID is the host's PID of the
// container's first process, so that /proc readings (process trees,
// listening sockets, signal masks) work as for a native process.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/oe-rt/oe-rt/internal/launch"
	"github.com/oe-rt/oe-rt/internal/runtimeproc"
)

// Labels on everything a Launcher creates.
const (
	// LabelOwner marks what oe-rt made; its value is "<pid>.<start>": the
	// owning process's PID and its start time (clock ticks since boot), so
	// that a recycled PID is not taken for the owner.
	LabelOwner = "io.oe-rt.owner"
	// LabelInstance names the instance a container is.
	LabelInstance = "io.oe-rt.instance"
	// LabelRun is the launcher's token: what one launcher made, among
	// the launchers of one process.
	LabelRun = "io.oe-rt.run"
)

// Port is the port the master's docker mode gives every instance: all
// three address variables are 0.0.0.0:50051, a port of the instance's own
// network namespace.
const Port = 50051

// ListenAddress is the address a container instance is told to listen on.
const ListenAddress = "0.0.0.0:50051"

// Options say how to make the instances.
type Options struct {
	// Image is the image's name or ID; it must be on the engine (the
	// master's pull failing is only a warning to it, too).
	Image string
	// Memory is the memory limit in bytes (HostConfig.Memory); 0: none.
	Memory int64
	// MemorySwap is memory plus swap in bytes, Docker's --memory-swap
	// (HostConfig.MemorySwap, Baetyl's resources.memory.swap); 0 leaves it
	// unset, as the master does (the engine then allows twice Memory);
	// -1: unlimited swap.
	MemorySwap int64
	// Pids is the pids limit (HostConfig.PidsLimit); 0: none.
	Pids int64
	// CPUs is the CPU quota in CPUs (HostConfig.NanoCPUs); 0: none.
	CPUs float64
	// Logger receives the launcher's log; nil discards it.
	Logger *slog.Logger
}

// Mount is a bind mount of the host's path Source at Target.
type Mount = runtimeproc.Mount

// NoEngineError says that no Docker engine answered.
type NoEngineError struct {
	// Host is the engine's address that was tried (DOCKER_HOST, or the
	// default socket).
	Host string
	// FromEnv says whether it came from DOCKER_HOST.
	FromEnv bool
	Err     error
}

func (e *NoEngineError) Error() string {
	src := "DOCKER_HOST is not set, so the default"
	if e.FromEnv {
		src = "DOCKER_HOST"
	}
	return fmt.Sprintf("no Docker engine answers at %s (%s): %v; start one (e.g. eval \"$(./scripts/docker-engine.sh start)\"), or set DOCKER_HOST to the socket of one that runs",
		e.Host, src, e.Err)
}

func (e *NoEngineError) Unwrap() error { return e.Err }

// Image describes the image instances are made from.
type Image = runtimeproc.Image

// Launcher starts instances as containers. Make one with New; Close it.
type Launcher struct {
	cli   *client.Client
	opts  Options
	log   *slog.Logger
	owner string // LabelOwner's value
	token string // makes container names unique to this launcher
	image Image

	netName string
	netID   string

	mu        sync.Mutex
	procs     map[string]*Process // by container ID
	names     map[string]int      // instance names launched, and how often
	closed    bool
	launching sync.WaitGroup // Launch calls under way
}

// Connect opens the engine (DOCKER_HOST, or the default socket), with API
// version negotiation, and checks that it answers.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	host := os.Getenv(client.EnvOverrideHost)
	if host == "" {
		host = client.DefaultDockerHost
	}
	if err != nil {
		return nil, &NoEngineError{Host: host, FromEnv: os.Getenv(client.EnvOverrideHost) != "", Err: err}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		cli.Close()
		return nil, &NoEngineError{Host: host, FromEnv: os.Getenv(client.EnvOverrideHost) != "", Err: err}
	}
	cli.NegotiateAPIVersion(pctx)
	return cli, nil
}

// New connects to the engine, removes what an earlier owner that is gone
// left behind (Sweep), checks that the image is there and makes the
// launcher's network.
func New(ctx context.Context, o Options) (*Launcher, error) {
	cli, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	l := &Launcher{cli: cli, opts: o, log: o.Logger, owner: ownerValue(), token: randomToken(), procs: map[string]*Process{}, names: map[string]int{}}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if removed, err := Sweep(ctx, cli); err != nil {
		l.log.Warn("could not sweep what earlier runs left", "err", err)
	} else if len(removed) > 0 {
		l.log.Info("removed what killed earlier runs left", "what", removed)
	}
	img, _, err := cli.ImageInspectWithRaw(ctx, o.Image)
	if err != nil {
		cli.Close()
		if client.IsErrNotFound(err) {
			return nil, fmt.Errorf("image %q is not on the engine (conform pulls nothing: build or pull it first): %w", o.Image, err)
		}
		return nil, fmt.Errorf("inspect image %q: %w", o.Image, err)
	}
	l.image = Image{Name: o.Image, ID: img.ID, Size: img.Size, WorkingDir: img.Config.WorkingDir, User: img.Config.User}
	if img.Config != nil {
		l.image.Entrypoint, l.image.Cmd, l.image.StopSignal = img.Config.Entrypoint, img.Config.Cmd, img.Config.StopSignal
	}
	l.netName = "oe-rt-conform-" + l.token
	nw, err := cli.NetworkCreate(ctx, l.netName, network.CreateOptions{Driver: "bridge", Labels: map[string]string{LabelOwner: l.owner, LabelRun: l.token}})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("make the instances' network: %w", err)
	}
	l.netID = nw.ID
	return l, nil
}

// Image describes the image.
func (l *Launcher) Image() Image { return l.image }

// Owner is the launcher's LabelOwner value.
func (l *Launcher) Owner() string { return l.owner }

// Run is the launcher's LabelRun value.
func (l *Launcher) Run() string { return l.token }

// OwnerValue is LabelOwner's value for this process.
func OwnerValue() string { return ownerValue() }

// Network is the user-defined network the instances are on.
func (l *Launcher) Network() string { return l.netName }

// ListenAddress is 0.0.0.0:50051, as the master's docker mode sets all
// three address variables.
func (l *Launcher) ListenAddress() (string, error) { return ListenAddress, nil }

// Launch creates and starts a container for in: in.Spec.Env is its whole
// environment, in.Spec.Args its command (the image's entrypoint runs it;
// none: the image's CMD), in.Mounts its binds. in.Spec's Path, Argv0,
// Dir, Limits and MasterGroup are not used: the image says what runs and
// where, the launcher's options the limits. The address to reach it at is
// its IP on the launcher's network, port 50051.
func (l *Launcher) Launch(in runtimeproc.Instance) (runtimeproc.Process, string, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, "", errors.New("the container launcher is closed")
	}
	l.launching.Add(1)
	l.mu.Unlock()
	defer l.launching.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := l.containerName(in.Name)
	cfg, hc := l.containerConfig(in)
	created := time.Now()
	cr, err := l.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return nil, "", fmt.Errorf("create container %s from %s: %w", name, l.opts.Image, err)
	}
	p := &Process{l: l, id: cr.ID, name: name, created: created, out: launch.NewOutput(0), done: make(chan struct{}), outDone: make(chan struct{}), sampled: make(chan struct{})}
	l.mu.Lock()
	l.procs[cr.ID] = p
	l.mu.Unlock()
	ins, waitC, waitErr, err := p.start(ctx)
	if err != nil {
		// Neither its exit nor its sampler is watched yet.
		if p.waitCancel != nil {
			p.waitCancel()
		}
		close(p.done)
		close(p.sampled)
		p.remove()
		return nil, "", err
	}
	p.pid = ins.State.Pid
	p.started = parseTime(ins.State.StartedAt, time.Now())
	if p.pid > 0 {
		if ps := launch.Tree(p.pid); len(ps) > 0 && ps[0].Pid == p.pid {
			p.pidStart = ps[0].Start
		}
		p.cg = findCgroups(p.pid)
	}
	p.limits = launch.Limits{Memory: l.opts.Memory, Tasks: int(l.opts.Pids)}
	ip := ""
	if ins.NetworkSettings != nil {
		if ep := ins.NetworkSettings.Networks[l.netName]; ep != nil {
			ip = ep.IPAddress
		}
	}
	go p.waitExit(waitC, waitErr)
	go p.sampler()
	if ip == "" {
		// It ended before the engine gave it an address (or has none):
		// dial what cannot answer, and let its exit tell.
		ip = "127.0.0.1"
		if !ins.State.Running {
			return p, "127.0.0.1:1", nil
		}
	}
	l.log.Debug("container started", "name", name, "id", cr.ID[:12], "pid", p.pid, "ip", ip)
	return p, ip + ":" + strconv.Itoa(Port), nil
}

// containerName is the name of a new container of the instance called
// instance: the instance's name and the run's token, and a number from
// the second time on (a repeated run), since the engine's names are unique.
func (l *Launcher) containerName(instance string) string {
	name := instance + "-" + l.token
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.names[instance]; n > 0 {
		name += fmt.Sprintf("-%d", n+1)
	}
	l.names[instance]++
	return name
}

// containerConfig is the instance's container as Baetyl's docker engine
// makes it: the instance's environment and args, the master's labels, its
// mounts bound (read-only where they say), the launcher's network, restart
// policy no, no init, the memory, swap, CPU and pids limits.
func (l *Launcher) containerConfig(in runtimeproc.Instance) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:  l.opts.Image,
		Env:    in.Spec.Env,
		Cmd:    in.Spec.Args,
		Labels: map[string]string{LabelOwner: l.owner, LabelRun: l.token, LabelInstance: in.Name, "baetyl": "baetyl", "service": in.Service},
		// The master attaches nothing; conform reads the output
		// through an attach of its own.
		AttachStdout: true, AttachStderr: true,
	}
	if len(in.Spec.Args) == 0 {
		cfg.Cmd = nil
	}
	var binds []string
	for _, m := range in.Mounts {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		binds = append(binds, m.Source+":"+m.Target+":"+mode)
	}
	noInit := false
	hc := &container.HostConfig{
		Binds:         binds,
		NetworkMode:   container.NetworkMode(l.netName),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Init:          &noInit,
		Resources: container.Resources{
			Memory:     l.opts.Memory,
			MemorySwap: l.opts.MemorySwap,
			NanoCPUs:   int64(math.Round(l.opts.CPUs * 1e9)),
		},
	}
	if l.opts.Pids > 0 {
		p := l.opts.Pids
		hc.Resources.PidsLimit = &p
	}
	return cfg, hc
}

// start attaches to the created container (before its start, so that
// nothing it writes is missed), asks for its next exit, starts it and
// inspects it. It returns the inspection and the exit's channels; an error
// names the step and the container.
func (p *Process) start(ctx context.Context) (container.InspectResponse, <-chan container.WaitResponse, <-chan error, error) {
	cli := p.l.cli
	att, err := cli.ContainerAttach(ctx, p.id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return container.InspectResponse{}, nil, nil, fmt.Errorf("attach to container %s: %w", p.name, err)
	}
	p.attach = att.Close
	go p.copyOutput(att.Reader)
	// The next exit, asked for before the start (a "not-running" wait
	// asked after it could miss a runtime that exits at once).
	waitCtx, waitCancel := context.WithCancel(context.Background())
	p.waitCancel = waitCancel
	waitC, waitErr := cli.ContainerWait(waitCtx, p.id, container.WaitConditionNextExit)
	if err := cli.ContainerStart(ctx, p.id, container.StartOptions{}); err != nil {
		return container.InspectResponse{}, nil, nil, fmt.Errorf("start container %s: %w", p.name, err)
	}
	ins, err := cli.ContainerInspect(ctx, p.id)
	if err != nil {
		return container.InspectResponse{}, nil, nil, fmt.Errorf("inspect container %s: %w", p.name, err)
	}
	return ins, waitC, waitErr, nil
}

// Close removes every container the launcher made and its network, and
// closes the connection to the engine.
func (l *Launcher) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.launching.Wait() // a container being made is made, then removed
	l.mu.Lock()
	procs := make([]*Process, 0, len(l.procs))
	for _, p := range l.procs {
		procs = append(procs, p)
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Cleanup()
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Anything else of this launcher's (a container whose create answer
	// was lost), then the network.
	err := removeOwned(ctx, l.cli, filters.Arg("label", LabelRun+"="+l.token), func(string) bool { return true })
	l.cli.Close()
	return err
}

// Sweep removes the containers, networks and volumes labelled LabelOwner
// whose owner is no longer running (killed before it could remove them),
// and returns what it removed.
func Sweep(ctx context.Context, cli *client.Client) ([]string, error) {
	var removed []string
	err := removeOwnedLog(ctx, cli, filters.Arg("label", LabelOwner), func(v string) bool { return !ownerAlive(v) }, &removed)
	return removed, err
}

func removeOwned(ctx context.Context, cli *client.Client, sel filters.KeyValuePair, match func(owner string) bool) error {
	return removeOwnedLog(ctx, cli, sel, match, nil)
}

// removeOwnedLog removes the containers and networks that sel selects and
// whose LabelOwner match accepts, adding what it removed to removed.
func removeOwnedLog(ctx context.Context, cli *client.Client, sel filters.KeyValuePair, match func(owner string) bool, removed *[]string) error {
	f := filters.NewArgs(filters.Arg("label", LabelOwner), sel)
	var errs []error
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		if !match(c.Labels[LabelOwner]) {
			continue
		}
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !client.IsErrNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
			errs = append(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
		} else if removed != nil {
			*removed = append(*removed, "container "+strings.TrimPrefix(firstName(c.Names), "/"))
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range ns {
		if !match(n.Labels[LabelOwner]) {
			continue
		}
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !client.IsErrNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		} else if removed != nil {
			*removed = append(*removed, "network "+n.Name)
		}
	}
	return errors.Join(errs...)
}

func firstName(names []string) string {
	if len(names) == 0 {
		return "?"
	}
	return names[0]
}

// ownerValue is LabelOwner's value for this process.
func ownerValue() string {
	pid := os.Getpid()
	var start uint64
	if ps := launch.Tree(pid); len(ps) > 0 {
		start = ps[0].Start
	}
	return fmt.Sprintf("%d.%d", pid, start)
}

// ownerAlive reports whether the owner a label names still runs. A value
// it cannot read is taken as alive: what it does not understand, it
// leaves.
func ownerAlive(v string) bool {
	ps, ss, ok := strings.Cut(v, ".")
	if !ok {
		return true
	}
	pid, err1 := strconv.Atoi(ps)
	start, err2 := strconv.ParseUint(ss, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return true
	}
	return launch.Alive(pid, start)
}

func randomToken() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func parseTime(s string, def time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 2000 {
		return def
	}
	return t
}
