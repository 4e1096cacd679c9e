package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// serviceName is the runtime service's name, as the application
// configuration would name it: instances are <service>.<function>.<n>.
const serviceName = "oe-rt-conform"

// master is what conform provides as the master does: for each era, the
// working directory its instances run in (laid out as the master lays it
// out) and the master API, which refuses every request of an instance (an
// instance has no token) and records it. Everything lives in one temporary
// directory, removed by close.
type master struct {
	cfg  *Config
	src  string // the directory the working directories mirror: --dir, else the current one
	root string // the temporary directory

	mu      sync.Mutex
	eras    map[string]*eraSetup
	reqs    []apiRequest // the first maxRequests
	dropped int          // requests past those
	owners  map[int]int  // pid -> instance, as found
	// contained: the instances are containers, which see the socket at
	// /var/run/<era>.sock (container.go).
	contained bool
	// owner maps the pid of a process that called the API to the number
	// of the instance it belongs to (0: unknown).
	owner func(pid int) int
}

// eraSetup is one era's working directory and API.
type eraSetup struct {
	dir    string // the instances' working directory
	sock   string // the API socket's absolute path
	api    string // the API address as the master gives it
	server *http.Server
	err    error
}

// apiRequest is one request an instance made to the master API.
type apiRequest struct {
	at     time.Time
	era    string
	pid    int // the calling process (0: unknown)
	inst   int // its instance (0: unknown)
	method string
	path   string
	creds  bool // it sent the x-openedge-username/password headers
	status int
	answer string
}

func (q apiRequest) String() string {
	who := "a process conform could not place"
	if q.inst > 0 {
		who = fmt.Sprintf("instance #%d", q.inst)
	} else if q.pid > 0 {
		who = fmt.Sprintf("pid %d (not an instance's)", q.pid)
	}
	creds := ""
	if q.creds {
		creds = ", with credentials"
	}
	answer := fmt.Sprintf("%d", q.status)
	if q.answer != "" {
		answer += " " + q.answer
	}
	return fmt.Sprintf("%s %s by %s%s → %s", q.method, q.path, who, creds, answer)
}

func newMaster(cfg *Config) (*master, error) {
	src := cfg.Dir
	if src == "" {
		src = "."
	}
	src, err := filepath.Abs(src)
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "oe-rt-master-")
	if err != nil {
		return nil, fmt.Errorf("make the master's directory: %w", err)
	}
	return &master{cfg: cfg, src: src, root: root, eras: map[string]*eraSetup{}, owners: map[int]int{}}, nil
}

// era returns the era's working directory and API, setting them up the
// first time.
func (m *master) era(era string) (*eraSetup, error) { return m.eraWith(era, "") }

// eraWith is era with the configuration file conform was given (or the
// one --dir holds at etc/<era>/service.yml) replaced by config ("": none
// replaced): a working directory and API of their own. One replacement
// per era (config.baetyl-forms').
func (m *master) eraWith(era, config string) (*eraSetup, error) {
	key := era
	if config != "" {
		key = era + "-replaced-config"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.eras[key]; ok {
		return e, e.err
	}
	e := &eraSetup{}
	m.eras[key] = e
	e.err = m.setup(era, key, config, e)
	return e, e.err
}

func (m *master) setup(era, base, replaced string, e *eraSetup) error {
	// The API socket, outside the working directory, as the master's is.
	e.sock = filepath.Join(m.root, base+".sock")
	if len(e.sock) >= 108 {
		return fmt.Errorf("the master API socket's path %s is too long for a unix socket: set TMPDIR to a shorter directory", e.sock)
	}
	lis, err := net.Listen("unix", e.sock)
	if err != nil {
		return fmt.Errorf("serve the master API: %w", err)
	}
	e.server = &http.Server{
		Handler:           m.handler(era),
		ReadHeaderTimeout: 5 * time.Second,
		ConnContext:       peerContext,
	}
	go e.server.Serve(lis)

	// The working directory: --dir's entries through links, with the
	// master's mounts over them.
	e.dir = filepath.Join(m.root, base, "var", "run", era, "services", serviceName)
	l := layout{place: map[string]string{}, opaque: map[string]bool{}}
	if replaced != "" {
		l.place[configPath(era)] = replaced
	}
	if m.closedLayout() {
		// Only what the master mounts: the package, the codedirs
		// (layout.go), and the configuration below.
		l.closed = true
		config := m.cfg.ConfigFile
		if replaced != "" {
			config = replaced
		}
		m.placeMounts(l, era, config)
	}
	if m.cfg.ConfigFile != "" {
		// The master mounts the configuration volume at etc/<era>: there
		// the directory holds FILE as service.yml and the files beside
		// it, and nothing of --dir's; no etc/ directory of the other era
		// is there either.
		dir := "etc/" + era
		l.opaque[dir] = true
		for _, other := range []string{convention.EraOpenEdge, convention.EraBaetyl} {
			if other != era {
				l.place["etc/"+other] = ""
			}
		}
		if replaced == "" {
			l.place[configPath(era)] = m.cfg.ConfigFile
		}
		vol := filepath.Dir(m.cfg.ConfigFile)
		entries, err := os.ReadDir(vol)
		if err != nil {
			return fmt.Errorf("read the configuration's directory: %w", err)
		}
		for _, ent := range entries {
			if n := ent.Name(); n != filepath.Base(m.cfg.ConfigFile) && n != "service.yml" {
				l.place[dir+"/"+n] = filepath.Join(vol, n)
			}
		}
	}
	switch {
	case m.contained:
		e.api = "unix://" + containerSocket(era)
	case era == convention.EraBaetyl:
		l.place[convention.BaetylSocket] = e.sock
		e.api = "unix://" + convention.BaetylSocket
	default:
		// OpenEdge 0.1.2 gives the socket's absolute path
		// (unix:///var/run/openedge.sock).
		e.api = "unix://" + e.sock
	}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return fmt.Errorf("make the runtime's working directory: %w", err)
	}
	if err := l.mirror(e.dir, m.src, ""); err != nil {
		return fmt.Errorf("lay out the runtime's working directory: %w", err)
	}
	return nil
}

// configPath is where the master of era mounts the service's configuration,
// relative to the working directory.
func configPath(era string) string { return convention.EraOf(era).ConfigPath }

// layout is what the master puts into a working directory over --dir.
type layout struct {
	// place maps paths to what is there: a link to the target, or
	// nothing when the target is "".
	place map[string]string
	// opaque directories show nothing of --dir's.
	opaque map[string]bool
	// closed: no directory shows anything of --dir's but what is placed.
	closed bool
}

// mirror makes dst/rel show src/rel: each entry a link to src's, except
// those on the way to a placed path, which become directories of their own
// (mirrored in turn unless opaque) or, for the path itself, what place
// says.
func (l layout) mirror(dst, src, rel string) error {
	here := map[string]bool{} // names at this level on the way to a placed path
	for p := range l.place {
		r := p
		if rel != "" {
			if !strings.HasPrefix(p, rel+"/") {
				continue
			}
			r = strings.TrimPrefix(p, rel+"/")
		}
		name, _, _ := strings.Cut(r, "/")
		here[name] = true
	}
	if !l.opaque[rel] && !l.closed {
		entries, err := os.ReadDir(filepath.Join(src, rel))
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		for _, ent := range entries {
			if here[ent.Name()] {
				continue
			}
			if err := os.Symlink(filepath.Join(src, rel, ent.Name()), filepath.Join(dst, rel, ent.Name())); err != nil {
				return err
			}
		}
	}
	names := make([]string, 0, len(here))
	for n := range here {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.ToSlash(filepath.Join(rel, n))
		if target, ok := l.place[p]; ok {
			if target == "" {
				continue
			}
			if err := os.Symlink(target, filepath.Join(dst, p)); err != nil {
				return err
			}
			continue
		}
		if err := os.Mkdir(filepath.Join(dst, p), 0o755); err != nil {
			return err
		}
		if err := l.mirror(dst, src, p); err != nil {
			return err
		}
	}
	return nil
}

// instance describes an instance of the era for its environment.
func (m *master) instance(era, name, addr string) (convention.Instance, string, error) {
	return m.instanceWith(era, "", name, addr)
}

// instanceWith is instance in the working directory of eraWith(era, config).
func (m *master) instanceWith(era, config, name, addr string) (convention.Instance, string, error) {
	e, err := m.eraWith(era, config)
	if err != nil {
		return convention.Instance{}, "", err
	}
	in := convention.Instance{Era: era, Service: serviceName, Name: name, Address: addr, MasterAPI: e.api}
	if era == convention.EraBaetyl {
		in.MasterSocket = e.sock
		in.HostID = hostID()
	}
	return in, e.dir, nil
}

var hostID = sync.OnceValue(convention.HostID)

// maxRequests bounds the requests recorded; the rest are counted.
const maxRequests = 100

// requests returns the requests recorded so far, and how many more were
// made.
func (m *master) requests() ([]apiRequest, int) {
	m.mu.Lock()
	reqs, dropped, owner := append([]apiRequest(nil), m.reqs...), m.dropped, m.owner
	m.mu.Unlock()
	for i := range reqs {
		if q := &reqs[i]; q.inst == 0 && q.pid > 0 && owner != nil {
			q.inst = owner(q.pid)
		}
	}
	return reqs, dropped
}

// addresses names the API addresses given, for messages.
func (m *master) addresses() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var parts []string
	for _, era := range []string{convention.EraOpenEdge, convention.EraBaetyl} {
		if e, ok := m.eras[era]; ok && e.err == nil {
			parts = append(parts, e.api)
		}
	}
	if len(parts) == 0 {
		return "none was given"
	}
	return "given " + strings.Join(parts, " and ")
}

// close stops the API servers and removes the directory.
func (m *master) close() {
	m.mu.Lock()
	eras := m.eras
	m.eras = map[string]*eraSetup{}
	m.mu.Unlock()
	for _, e := range eras {
		if e.server != nil {
			e.server.Close()
		}
	}
	os.RemoveAll(m.root)
}

// route is one of the master API's routes.
type route struct{ method, path string }

// apiRoutes are the routes of each era's master API: Baetyl 1.0 serves the
// old unversioned ones and /v1; OpenEdge 0.1.2 the unversioned ones only.
var apiRoutes = map[string][]route{
	convention.EraOpenEdge: {
		{"GET", "/system/inspect"}, {"PUT", "/system/update"}, {"GET", "/ports/available"},
		{"PUT", "/services/{}/instances/{}/start"}, {"PUT", "/services/{}/instances/{}/stop"},
	},
	convention.EraBaetyl: {
		{"GET", "/system/inspect"}, {"PUT", "/system/update"}, {"GET", "/ports/available"},
		{"PUT", "/services/{}/instances/{}/start"}, {"PUT", "/services/{}/instances/{}/stop"},
		{"GET", "/v1/system/inspect"}, {"PUT", "/v1/system/update"}, {"GET", "/v1/ports/available"},
		{"PUT", "/v1/services/{}/instances/{}/report"},
		{"PUT", "/v1/services/{}/instances/{}/start"}, {"PUT", "/v1/services/{}/instances/{}/stop"},
	},
}

func routeMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if ps[i] == "{}" {
			if xs[i] == "" {
				return false
			}
		} else if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// handler answers as the master answers a process without a valid token:
// 401 "account unauthorized" on its routes (it checks the
// x-openedge-username/password headers against the tokens it gave its
// services, and an instance has none), 405 for another method on one of
// its paths, 404 "404 page not found" elsewhere.
func (m *master) handler(era string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q := apiRequest{at: time.Now(), era: era, method: req.Method, path: req.URL.Path,
			creds: req.Header.Get("x-openedge-username") != "" || req.Header.Get("x-openedge-password") != ""}
		if pid, ok := req.Context().Value(peerKey{}).(int); ok {
			q.pid = pid
		}
		// Place the caller while it surely still runs.
		m.mu.Lock()
		owner := m.owner
		inst, known := m.owners[q.pid]
		m.mu.Unlock()
		switch {
		case known:
			q.inst = inst
		case owner != nil && q.pid > 0:
			q.inst = owner(q.pid)
			if q.inst > 0 {
				// An unplaced caller is looked for again when the
				// requests are read: an instance may call before
				// conform has recorded it (a container's start).
				m.mu.Lock()
				m.owners[q.pid] = q.inst
				m.mu.Unlock()
			}
		}
		q.status = http.StatusNotFound
		for _, r := range apiRoutes[era] {
			if routeMatches(r.path, req.URL.Path) {
				q.status = http.StatusMethodNotAllowed
				if r.method == req.Method {
					q.status = http.StatusUnauthorized
					break
				}
			}
		}
		switch q.status {
		case http.StatusUnauthorized:
			q.answer = "account unauthorized"
			http.Error(w, q.answer, q.status)
		case http.StatusMethodNotAllowed:
			w.WriteHeader(q.status)
		default:
			q.answer = "404 page not found"
			http.NotFound(w, req)
		}
		m.mu.Lock()
		if len(m.reqs) < maxRequests {
			m.reqs = append(m.reqs, q)
		} else {
			m.dropped++
		}
		m.mu.Unlock()
	})
}

type peerKey struct{}

// peerContext records the pid of the process at the other end of a unix
// connection, where the system tells (peerPid).
func peerContext(ctx context.Context, c net.Conn) context.Context {
	if pid := peerPid(c); pid > 0 {
		return context.WithValue(ctx, peerKey{}, pid)
	}
	return ctx
}

// instanceOf returns the number of the instance whose process tree holds
// pid, or 0.
func (r *runner) instanceOf(pid int) int {
	r.mu.Lock()
	all := append([]*instance(nil), r.instances...)
	r.mu.Unlock()
	for _, inst := range all {
		if inst.proc.PID() == pid {
			return inst.n
		}
	}
	for _, inst := range all {
		for _, p := range launch.Tree(inst.proc.PID()) {
			if p.Pid == pid {
				return inst.n
			}
		}
	}
	return 0
}
