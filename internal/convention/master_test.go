package convention

import (
	"runtime"
	"strings"
	"testing"
)

func envMap(env []string) map[string][]string {
	m := map[string][]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = append(m[k], v)
	}
	return m
}

func TestBaetylInstanceEnv(t *testing.T) {
	base := []string{"PATH=/bin", "BAETYL_SERVICE_TOKEN=secret", "OPENEDGE_SERVICE_TOKEN=secret",
		"BAETYL_SERVICE_INSTANCE_ADDRESS=1.2.3.4:5", "OPENEDGE_MASTER_API=tcp://x", "BAETYL_SERVICE_MODE=docker", "HOME=/root"}
	env := InstanceEnv(base, Instance{Era: EraBaetyl, Service: "svc", Name: "svc.echo.1", Address: "127.0.0.1:9",
		MasterAPI: "unix://" + BaetylSocket, MasterSocket: "/tmp/x/baetyl.sock", HostID: "abc"}, []string{"EXTRA=1"})
	m := envMap(env)
	want := map[string]string{
		"PATH": "/bin", "HOME": "/root", "EXTRA": "1",
		"BAETYL_SERVICE_INSTANCE_ADDRESS": "127.0.0.1:9", "OPENEDGE_SERVICE_INSTANCE_ADDRESS": "127.0.0.1:9", "OPENEDGE_SERVICE_ADDRESS": "127.0.0.1:9",
		"BAETYL_SERVICE_INSTANCE_NAME": "svc.echo.1", "OPENEDGE_SERVICE_INSTANCE_NAME": "svc.echo.1",
		"BAETYL_SERVICE_NAME": "svc", "OPENEDGE_SERVICE_NAME": "svc",
		"BAETYL_MASTER_API_ADDRESS": "unix://var/run/baetyl.sock", "OPENEDGE_MASTER_API": "unix://var/run/baetyl.sock",
		"BAETYL_MASTER_API_SOCKET": "/tmp/x/baetyl.sock", "BAETYL_MASTER_API_VERSION": "v1", "OPENEDGE_MASTER_API_VERSION": "v1",
		"BAETYL_SERVICE_MODE": "native", "OPENEDGE_RUNNING_MODE": "native",
		"BAETYL_HOST_OS": runtime.GOOS, "OPENEDGE_HOST_OS": runtime.GOOS, "BAETYL_HOST_ID": "abc", "OPENEDGE_HOST_ID": "abc",
	}
	for k, v := range want {
		if got := m[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want exactly %q", k, got, v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("unexpected variables: %v", env)
	}
}

func TestOpenEdgeInstanceEnv(t *testing.T) {
	base := []string{"PATH=/bin", "OPENEDGE_SERVICE_TOKEN=secret", "OPENEDGE_SERVICE_NAME=master", "BAETYL_MASTER_API_SOCKET=/x"}
	env := InstanceEnv(base, Instance{Era: EraOpenEdge, Service: "svc", Name: "svc.echo.1", Address: "127.0.0.1:9",
		MasterAPI: "unix:///tmp/x/openedge.sock", HostID: "ignored"}, nil)
	m := envMap(env)
	want := map[string]string{
		"PATH": "/bin", "OPENEDGE_SERVICE_ADDRESS": "127.0.0.1:9", "OPENEDGE_SERVICE_NAME": "svc.echo.1",
		"OPENEDGE_MASTER_API": "unix:///tmp/x/openedge.sock", "OPENEDGE_RUNNING_MODE": "native", "OPENEDGE_HOST_OS": runtime.GOOS,
	}
	for k, v := range want {
		if got := m[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want exactly %q", k, got, v)
		}
	}
	if len(m) != len(want) {
		t.Errorf("unexpected variables: %v", env)
	}
}

// Without a master API (bench), no API variable is set, and the launcher's
// own are removed.
func TestRuntimeEnvHasNoAPI(t *testing.T) {
	env := RuntimeEnv([]string{"BAETYL_MASTER_API_ADDRESS=unix://x", "BAETYL_MASTER_API_VERSION=v1"}, "baetyl", "127.0.0.1:1", "bench", nil)
	for _, kv := range env {
		if strings.Contains(kv, "MASTER_API") || strings.Contains(kv, "TOKEN") {
			t.Errorf("unexpected %s", kv)
		}
	}
	if m := envMap(env); m["BAETYL_SERVICE_INSTANCE_ADDRESS"][0] != "127.0.0.1:1" {
		t.Errorf("no address: %v", env)
	}
}
