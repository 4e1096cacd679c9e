package convention

import (
	"os"
	"runtime"
	"strings"
)

// The masters whose environment an instance can be given.
const (
	// EraOpenEdge is OpenEdge 0.1.2's master and function manager.
	EraOpenEdge = "openedge"
	// EraBaetyl is Baetyl's (0.1.6 to 1.x) master and function manager.
	EraBaetyl = "baetyl"
)

// BaetylSocket is where a Baetyl master's API socket appears in an
// instance's working directory, and the API address it gives in native
// mode is unix:// followed by it (relative to that directory).
const BaetylSocket = "var/run/baetyl.sock"

// Instance is what a master puts into the environment of an instance it
// starts for the function manager.
type Instance struct {
	// Era is EraOpenEdge or EraBaetyl.
	Era string
	// Service is the runtime service's name (the function manager's
	// function service, e.g. function-python).
	Service string
	// Name is the instance's name, <service>.<function>.<n>.
	Name string
	// Address is the host:port the instance is to listen on.
	Address string
	// MasterAPI is the master API's address as the master gives it:
	// "unix://var/run/baetyl.sock" (Baetyl, native mode: relative to the
	// working directory), "unix:///var/run/openedge.sock" (OpenEdge 0.1.2).
	// Empty: no API variables at all.
	MasterAPI string
	// MasterSocket is the API socket's absolute path
	// (BAETYL_MASTER_API_SOCKET; Baetyl only).
	MasterSocket string
	// HostID is the host's id (Baetyl only; left out when empty).
	HostID string
	// Mode is the master's running mode: "native" (also when empty) or
	// "docker".
	Mode string
}

func (in Instance) mode() string {
	if in.Mode == "" {
		return "native"
	}
	return in.Mode
}

// Vars returns the variables the master of in.Era sets for the instance, as
// K=V, in a fixed order. The service token is never among them: the master
// does not give it to instances it starts dynamically.
//
// Baetyl: the address under its three names, the instance name under its
// two, the service name under its two, the master API's address (also
// under OpenEdge's name), socket and version, the mode (native) and the
// host's OS and id under both names.
//
// OpenEdge 0.1.2: OPENEDGE_SERVICE_ADDRESS, OPENEDGE_SERVICE_NAME (the
// instance's name, in that era), OPENEDGE_MASTER_API, OPENEDGE_RUNNING_MODE
// and OPENEDGE_HOST_OS.
func (in Instance) Vars() []string {
	kv := func(k, v string) string { return k + "=" + v }
	if in.Era == EraBaetyl {
		out := []string{
			kv("BAETYL_SERVICE_INSTANCE_ADDRESS", in.Address),
			kv("OPENEDGE_SERVICE_INSTANCE_ADDRESS", in.Address),
			kv("OPENEDGE_SERVICE_ADDRESS", in.Address),
			kv("BAETYL_SERVICE_INSTANCE_NAME", in.Name),
			kv("OPENEDGE_SERVICE_INSTANCE_NAME", in.Name),
			kv("BAETYL_SERVICE_NAME", in.Service),
			kv("OPENEDGE_SERVICE_NAME", in.Service),
		}
		if in.MasterAPI != "" {
			out = append(out,
				kv("BAETYL_MASTER_API_ADDRESS", in.MasterAPI),
				kv("OPENEDGE_MASTER_API", in.MasterAPI))
			if in.MasterSocket != "" {
				out = append(out, kv("BAETYL_MASTER_API_SOCKET", in.MasterSocket))
			}
			out = append(out,
				kv("BAETYL_MASTER_API_VERSION", "v1"),
				kv("OPENEDGE_MASTER_API_VERSION", "v1"))
		}
		out = append(out,
			kv("BAETYL_SERVICE_MODE", in.mode()),
			kv("OPENEDGE_RUNNING_MODE", in.mode()),
			kv("BAETYL_HOST_OS", runtime.GOOS),
			kv("OPENEDGE_HOST_OS", runtime.GOOS))
		if in.HostID != "" {
			out = append(out, kv("BAETYL_HOST_ID", in.HostID), kv("OPENEDGE_HOST_ID", in.HostID))
		}
		return out
	}
	out := []string{
		kv("OPENEDGE_SERVICE_ADDRESS", in.Address),
		kv("OPENEDGE_SERVICE_NAME", in.Name),
	}
	if in.MasterAPI != "" {
		out = append(out, kv("OPENEDGE_MASTER_API", in.MasterAPI))
	}
	return append(out,
		kv("OPENEDGE_RUNNING_MODE", in.mode()),
		kv("OPENEDGE_HOST_OS", runtime.GOOS))
}

// InstanceEnv builds the environment a launcher acting as the master hands
// an instance: base (usually os.Environ()) without the address, name,
// master-API and token variables of either era and without any variable
// the master sets, then in.Vars(), then extra (K=V, e.g. --env).
func InstanceEnv(base []string, in Instance, extra []string) []string {
	vars := in.Vars()
	drop := map[string]bool{"BAETYL_SERVICE_NAME": true}
	for _, list := range [][]string{MasterEnv, AddressEnv, NameEnv} {
		for _, k := range list {
			drop[k] = true
		}
	}
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	env = append(env, vars...)
	return append(env, extra...)
}

// HostID reads the host's id as Baetyl's master does (through gopsutil): the
// DMI product UUID, else the machine id, else the boot id; "" when none can
// be read.
func HostID() string {
	for _, f := range []string{"/sys/class/dmi/id/product_uuid", "/etc/machine-id", "/proc/sys/kernel/random/boot_id"} {
		if b, err := os.ReadFile(f); err == nil {
			if id := strings.ToLower(strings.TrimSpace(string(b))); id != "" {
				return id
			}
		}
	}
	return ""
}
