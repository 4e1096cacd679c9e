package conformance_test

// conform starts a runtime as the master does: the era's environment, its
// argv[0], a working directory laid out as the master's with the
// configuration where the master mounts it, and a master API that refuses.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
	"github.com/oe-rt/oe-rt/internal/launch"
)

// startedAs runs the "env" runtime for start.listen only and returns what
// it saw.
func startedAs(t *testing.T, mut func(*conformance.Config)) (startedWith, map[string]string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "env.json")
	rep := run(t, "env", func(c *conformance.Config) {
		c.Run = []string{"start.listen"}
		c.Env = append(c.Env, "OE_RT_FAKE_OUT="+out)
		if mut != nil {
			mut(c)
		}
	})
	require.Equal(t, conformance.Passed, rep.Verdict, rep.Reason)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var sw startedWith
	require.NoError(t, json.Unmarshal(b, &sw))
	env := map[string]string{}
	for _, kv := range sw.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	_, err = os.Stat(sw.Cwd)
	assert.True(t, os.IsNotExist(err), "the working directory %s is removed after the run", sw.Cwd)
	return sw, env
}

// masterVars are the variables a master of either era may set.
func masterVars(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if (strings.HasPrefix(k, "BAETYL_") || strings.HasPrefix(k, "OPENEDGE_")) && k != "OE_RT_FAKE" {
			out[k] = v
		}
	}
	return out
}

func TestBaetylProfileIsTheBaetylMastersEnvironment(t *testing.T) {
	// conform's own environment: a token and an API of its own, which
	// the runtime must not get.
	t.Setenv("BAETYL_SERVICE_TOKEN", "secret")
	t.Setenv("OPENEDGE_SERVICE_TOKEN", "secret")
	t.Setenv("BAETYL_MASTER_API_ADDRESS", "tcp://10.0.0.1:1")
	t.Setenv("BAETYL_SERVICE_NAME", "conform-itself")
	sw, env := startedAs(t, func(c *conformance.Config) { c.Profile = conformance.ProfileBaetyl })
	vars := masterVars(env)
	addr := vars["BAETYL_SERVICE_INSTANCE_ADDRESS"]
	assert.Regexp(t, `^127\.0\.0\.1:\d+$`, addr)
	sock := vars["BAETYL_MASTER_API_SOCKET"]
	assert.True(t, filepath.IsAbs(sock), sock)
	id := vars["BAETYL_HOST_ID"]
	want := map[string]string{
		"BAETYL_SERVICE_INSTANCE_ADDRESS": addr, "OPENEDGE_SERVICE_INSTANCE_ADDRESS": addr, "OPENEDGE_SERVICE_ADDRESS": addr,
		"BAETYL_SERVICE_INSTANCE_NAME": "oe-rt-conform.echo.1", "OPENEDGE_SERVICE_INSTANCE_NAME": "oe-rt-conform.echo.1",
		"BAETYL_SERVICE_NAME": "oe-rt-conform", "OPENEDGE_SERVICE_NAME": "oe-rt-conform",
		"BAETYL_MASTER_API_ADDRESS": "unix://var/run/baetyl.sock", "OPENEDGE_MASTER_API": "unix://var/run/baetyl.sock",
		"BAETYL_MASTER_API_SOCKET": sock, "BAETYL_MASTER_API_VERSION": "v1", "OPENEDGE_MASTER_API_VERSION": "v1",
		"BAETYL_SERVICE_MODE": "native", "OPENEDGE_RUNNING_MODE": "native",
		"BAETYL_HOST_OS": runtime.GOOS, "OPENEDGE_HOST_OS": runtime.GOOS,
	}
	if id != "" {
		want["BAETYL_HOST_ID"], want["OPENEDGE_HOST_ID"] = id, id
	}
	assert.Equal(t, want, vars, "exactly the Baetyl master's variables: no token, none of conform's own")
	assert.Equal(t, "oe-rt-conform.echo.1", sw.Argv[0], "argv[0] is the instance name")
	assert.Equal(t, []string{"oe-rt-conform.echo.1"}, sw.Argv, "no -c, no other argument")
	assert.True(t, strings.HasSuffix(sw.Cwd, "/var/run/baetyl/services/oe-rt-conform"), sw.Cwd)
}

func TestOpenEdgeProfileIsTheOpenEdge012MastersEnvironment(t *testing.T) {
	t.Setenv("OPENEDGE_SERVICE_TOKEN", "secret")
	t.Setenv("OPENEDGE_MASTER_API", "tcp://10.0.0.1:1")
	sw, env := startedAs(t, nil)
	vars := masterVars(env)
	addr := vars["OPENEDGE_SERVICE_ADDRESS"]
	assert.Regexp(t, `^127\.0\.0\.1:\d+$`, addr)
	api := vars["OPENEDGE_MASTER_API"]
	assert.Regexp(t, `^unix:///.*/openedge\.sock$`, api, "0.1.2 gives the socket's absolute path")
	assert.Equal(t, map[string]string{
		"OPENEDGE_SERVICE_ADDRESS": addr, "OPENEDGE_SERVICE_NAME": "oe-rt-conform.echo.1", "OPENEDGE_MASTER_API": api,
		"OPENEDGE_RUNNING_MODE": "native", "OPENEDGE_HOST_OS": runtime.GOOS,
	}, vars)
	assert.Equal(t, "oe-rt-conform", sw.Argv[0], "OpenEdge 0.1.2 keeps the service's name as argv[0]")
}

// fakeProject is a --dir with files of its own, an etc/baetyl and an
// etc/openedge with another service.yml, and a configuration elsewhere,
// with a certificate beside it.
func fakeProject(t *testing.T) (dir, config string) {
	dir = t.TempDir()
	for _, f := range []string{"data.txt", "etc/baetyl/service.yml", "etc/baetyl/old.pem", "etc/openedge/service.yml", "etc/other/x", "var/db/x"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("not the config\n"), 0o644))
	}
	vol := t.TempDir()
	config = filepath.Join(vol, "my.yml")
	require.NoError(t, os.WriteFile(config, []byte("# oe-rt-fake-config\nfunctions:\n  - {name: f, handler: f.h, codedir: var/db/x}\n  - {name: g, handler: g.h, codedir: /abs}\n  - {name: h, handler: h.h, codedir: ../up}\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(vol, "ca.pem"), nil, 0o644))
	return dir, config
}

func TestConfigAsTheMasterGivesIt(t *testing.T) {
	for _, p := range []conformance.Profile{conformance.ProfileBaetyl, conformance.ProfileOpenEdge} {
		t.Run(string(p), func(t *testing.T) {
			dir, config := fakeProject(t)
			rep := run(t, "config", func(c *conformance.Config) {
				c.Profile, c.Dir, c.ConfigFile = p, dir, config
				c.Run = []string{"start.listen", "rights.master-api"}
				other := map[conformance.Profile]string{conformance.ProfileBaetyl: "openedge", conformance.ProfileOpenEdge: "baetyl"}[p]
				c.Env = append(c.Env,
					// What the master mounts is there: the codedir the
					// configuration names, the configuration volume's
					// other files, the package (--dir) and the socket.
					"OE_RT_FAKE_NEEDS=var/db/x,lib/"+string(p)+"/oe-rt-conform/data.txt,etc/"+string(p)+"/ca.pem,var/run/"+string(p)+".sock",
					// Nothing else of --dir is: not its files, not its own
					// etc/<era>, not the other era's.
					"OE_RT_FAKE_HIDDEN=data.txt,etc/other,etc/"+string(p)+"/old.pem,etc/"+other+",up")
				if p == conformance.ProfileOpenEdge {
					c.Env[len(c.Env)-2] = strings.TrimSuffix(c.Env[len(c.Env)-2], ",var/run/openedge.sock") // 0.1.2's socket is absolute
				}
			})
			assert.Equal(t, conformance.Passed, rep.Verdict, rep.Reason)
			assert.Equal(t, config, rep.Runtime.Config)
			for _, f := range []string{"etc/baetyl/service.yml", "etc/openedge/service.yml"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				require.NoError(t, err)
				assert.Equal(t, "not the config\n", string(b), "--dir itself is left alone")
			}
		})
	}
}

// A runtime that finds its configuration only through -c, or only in
// etc/openedge, does not start under the Baetyl master, and start.listen
// says why.
func TestConfigOnlyThroughDashCFailsStart(t *testing.T) {
	dir, config := fakeProject(t)
	rep := run(t, "config-openedge-only", func(c *conformance.Config) {
		c.Profile, c.Dir, c.ConfigFile = conformance.ProfileBaetyl, dir, config
		c.Run = []string{"start.listen"}
	})
	assert.Equal(t, conformance.Failed, rep.Verdict)
	r := result(t, rep, "start.listen")
	assert.Equal(t, conformance.Fail, r.Status)
	assert.Contains(t, r.Message, `it wrote "load config: open etc/openedge/service.yml: no such file or directory"`)
	assert.Contains(t, r.Message, "at etc/baetyl/service.yml in the runtime's working directory (a link to "+config+"), with no -c")
	assert.Contains(t, r.Message, "read etc/baetyl/service.yml by default when any of BAETYL_SERVICE_INSTANCE_ADDRESS, BAETYL_SERVICE_INSTANCE_NAME, BAETYL_SERVICE_NAME is set")

	// Without --config, the same runtime given -c starts.
	rep = run(t, "config-openedge-only", func(c *conformance.Config) {
		c.Profile, c.Dir = conformance.ProfileBaetyl, dir
		c.Command = append(c.Command, "-c", config)
		c.Run = []string{"start.listen"}
	})
	assert.Equal(t, conformance.Passed, rep.Verdict, rep.Reason)
}

func TestMasterAPIRefuses(t *testing.T) {
	t.Run("baetyl", func(t *testing.T) {
		rep := run(t, "api-ok", func(c *conformance.Config) {
			c.Profile = conformance.ProfileBaetyl
			c.Run = []string{"start.listen", "rights.master-api"}
		})
		r := result(t, rep, "rights.master-api")
		assert.Equal(t, conformance.Pass, r.Status, r.Message)
		assert.Contains(t, r.Message, "GET /v1/system/inspect by instance #1, with credentials → 401 account unauthorized")
		assert.Contains(t, r.Message, "kept serving")
		require.NotEmpty(t, rep.Runtime.MasterAPI)
		q := rep.Runtime.MasterAPI[0]
		assert.Equal(t, conformance.APIRequest{Instance: 1, Pid: q.Pid, MS: q.MS, Method: "GET", Path: "/v1/system/inspect", Status: 401, Answer: "account unauthorized"}, q)
		assert.Equal(t, rep.Instances[0].Pid, q.Pid)
	})
	t.Run("openedge", func(t *testing.T) {
		// OpenEdge 0.1.2's master has no /v1 routes.
		rep := run(t, "api-ok", func(c *conformance.Config) { c.Run = []string{"rights.master-api"} })
		r := result(t, rep, "rights.master-api")
		assert.Equal(t, conformance.Pass, r.Status, r.Message)
		assert.Contains(t, r.Message, "GET /v1/system/inspect by instance #1 → 404 404 page not found")
	})
	t.Run("gives up", func(t *testing.T) {
		rep := run(t, "api-exit", func(c *conformance.Config) {
			c.Profile = conformance.ProfileBaetyl
			c.Run = []string{"rights.master-api", "run.alive"}
		})
		r := result(t, rep, "rights.master-api")
		assert.Equal(t, conformance.Warn, r.Status, r.Message)
		assert.Contains(t, r.Message, "GET /v1/system/inspect by instance #1, with credentials → 401 account unauthorized")
		assert.Contains(t, r.Message, "instance #1 exited by itself (exit status 1)")
		assert.Contains(t, r.Message, "after the master refused GET /v1/system/inspect")
		assert.Equal(t, conformance.Fail, result(t, rep, "run.alive").Status)
	})
}

func TestAddressAliases(t *testing.T) {
	t.Run("only the original name", func(t *testing.T) {
		rep := run(t, "only-osa", func(c *conformance.Config) { c.Run = []string{"start.address-aliases"} })
		r := result(t, rep, "start.address-aliases")
		assert.Equal(t, conformance.Warn, r.Status, r.Message)
		assert.Contains(t, r.Message, "masters that can start it: OpenEdge 0.1.2, OpenEdge 0.1.3–0.1.5, Baetyl 0.1.6–1.x — only because every later master still sets OPENEDGE_SERVICE_ADDRESS too")
		assert.Contains(t, r.Message, "It starts with OPENEDGE_SERVICE_ADDRESS (#2")
		assert.Contains(t, r.Message, "not with OPENEDGE_SERVICE_INSTANCE_ADDRESS (instance #3 with it alone: it listens on")
		assert.NotContains(t, r.Message, "\n")
		var roles []string
		for _, in := range rep.Instances {
			roles = append(roles, in.Role)
			if strings.HasPrefix(in.Role, "alias ") {
				assert.Contains(t, in.Checks, "start.address-aliases")
				assert.NotEmpty(t, in.Exit, "instance #%d was ended", in.N)
			}
		}
		assert.Equal(t, []string{"main", "alias OPENEDGE_SERVICE_ADDRESS", "alias OPENEDGE_SERVICE_INSTANCE_ADDRESS", "alias BAETYL_SERVICE_INSTANCE_ADDRESS"}, roles)
	})
	t.Run("only Baetyl's name", func(t *testing.T) {
		rep := run(t, "only-baetyl", func(c *conformance.Config) {
			c.Profile = conformance.ProfileBaetyl
			c.Run = []string{"start.address-aliases", "run.alive"}
		})
		r := result(t, rep, "start.address-aliases")
		assert.Equal(t, conformance.Warn, r.Status, r.Message)
		assert.Contains(t, r.Message, "masters that can start it: Baetyl 0.1.6–1.x; not OpenEdge 0.1.2, OpenEdge 0.1.3–0.1.5.")
		assert.Equal(t, conformance.Pass, result(t, rep, "run.alive").Status, "the probes' ends are not run.alive's")
	})
	t.Run("silent without its name", func(t *testing.T) {
		// An instance that neither listens nor exits is waited for as the
		// function manager waits, the start timeout: a runtime still
		// starting on a busy machine is never taken for one that does not
		// read its variable.
		rep := run(t, "only-osa-silent", func(c *conformance.Config) {
			c.StartTimeout = 4 * time.Second
			c.Run = []string{"start.address-aliases"}
		})
		r := result(t, rep, "start.address-aliases")
		assert.Equal(t, conformance.Warn, r.Status, r.Message)
		assert.Regexp(t, `not with OPENEDGE_SERVICE_INSTANCE_ADDRESS \(instance #3 with it alone: no gRPC connection on 127\.0\.0\.1:\d+ within 4s of exec \(the runtime listens on no TCP port\)\)`, r.Message)
	})
	t.Run("every name", func(t *testing.T) {
		rep := run(t, "plain", func(c *conformance.Config) { c.Run = []string{"start.address-aliases"} })
		r := result(t, rep, "start.address-aliases")
		assert.Equal(t, conformance.Pass, r.Status, r.Message)
		assert.Contains(t, r.Message, "masters of every era can start it")
	})
}

// A start script that traps SIGTERM and exits without passing it on
// leaves its server running under the master, which signals the script's
// PID only.
func TestTermTrappingLauncherLeavesAnOrphan(t *testing.T) {
	self := fakeBin
	script := filepath.Join(t.TempDir(), "start.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\ntrap \"exit 0\" TERM\n\""+self+"\" &\nwait\n"), 0o755))
	rep := run(t, "plain", func(c *conformance.Config) {
		c.Command = []string{script}
		c.Run = []string{"shutdown.*"}
	})
	r := result(t, rep, "shutdown.no-orphans")
	assert.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Regexp(t, "^under the master, pid \\d+ \\(`"+self+"`\\) would have kept running after the runtime exited", r.Message)
	assert.Equal(t, conformance.Pass, result(t, rep, "shutdown.sigterm").Status, "the script itself exits at once")
	assert.Equal(t, conformance.Pass, result(t, rep, "shutdown.drain").Status, "the orphaned server still answers the call in flight, as it would under the master")
}

// The master's directory (working directories, sockets) is removed when
// the run is interrupted too.
func TestMasterDirectoryRemovedOnInterrupt(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env.json")
	_, file := fakeProject(t)
	cfg := config(t, "env")
	cfg.Profile = conformance.ProfileBaetyl
	cfg.ConfigFile = file
	cfg.Env = append(cfg.Env, "OE_RT_FAKE_OUT="+out)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(out); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	rep, err := conformance.Run(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, conformance.Interrupted, rep.Verdict)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var sw startedWith
	require.NoError(t, json.Unmarshal(b, &sw))
	root := sw.Cwd
	for range 6 { // <root>/baetyl/var/run/baetyl/services/oe-rt-conform
		root = filepath.Dir(root)
	}
	assert.True(t, strings.HasPrefix(filepath.Base(root), "oe-rt-master-"), root)
	_, err = os.Stat(root)
	assert.True(t, os.IsNotExist(err), "%s is removed", root)
	assertNoChildren(t)
}

// A start script that leaves an orphan without the environment (and so
// without the launch's marker) and in a session of its own: conform still
// finds it, fails shutdown.no-orphans, and nothing is left running.
func TestOrphanWithoutEnvironment(t *testing.T) {
	self := fakeBin
	script := filepath.Join(t.TempDir(), "start.sh")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nenv -i setsid -f sleep 301.5 </dev/null >/dev/null 2>&1\nexec \""+self+"\"\n"), 0o755))
	rep := run(t, "plain", func(c *conformance.Config) {
		c.Command = []string{script}
		c.Run = []string{"shutdown.*"}
	})
	r := result(t, rep, "shutdown.no-orphans")
	assert.Equal(t, conformance.Fail, r.Status, r.Message)
	assert.Contains(t, r.Message, "(`sleep 301.5`) would have kept running after the runtime exited")
	for _, p := range launch.All() {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid)); err == nil && p.State != 'Z' {
			assert.NotContains(t, string(b), "sleep\x00301.5", "pid %d outlived the run", p.Pid)
		}
	}
}
