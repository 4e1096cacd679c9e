// Package convention holds the names fixed by the OpenEdge/Baetyl function
// runtime convention: environment variables, their order of precedence, and
// defaults. serve, call, conform and bench all read them from here so that
// they cannot disagree.
package convention

import (
	"os"
	"strings"
)

// AddressEnv lists the variables a runtime reads its listen address from, in
// order of precedence: Baetyl's first, then the later OpenEdge name, then the
// original OPENEDGE_SERVICE_ADDRESS.
var AddressEnv = []string{
	"BAETYL_SERVICE_INSTANCE_ADDRESS",
	"OPENEDGE_SERVICE_INSTANCE_ADDRESS",
	"OPENEDGE_SERVICE_ADDRESS",
}

// NameEnv lists the variables a runtime reads its instance name from, in order
// of precedence.
var NameEnv = []string{
	"BAETYL_SERVICE_INSTANCE_NAME",
	"OPENEDGE_SERVICE_INSTANCE_NAME",
	"OPENEDGE_SERVICE_NAME",
}

// MasterEnv lists the variables that give access to the master's API: its
// address and version, and the service's token. The master gives a
// dynamically started instance the address but never the token; a launcher
// removes all of them from the environment it passes on and sets its own.
var MasterEnv = []string{
	"OPENEDGE_MASTER_API",
	"OPENEDGE_MASTER_API_ADDRESS",
	"OPENEDGE_MASTER_API_VERSION",
	"OPENEDGE_SERVICE_TOKEN",
	"BAETYL_MASTER_API",
	"BAETYL_MASTER_API_ADDRESS",
	"BAETYL_MASTER_API_SOCKET",
	"BAETYL_MASTER_API_VERSION",
	"BAETYL_SERVICE_TOKEN",
}

// DefaultMaxMessageSize is the default of server.message.length.max: 4 MiB.
const DefaultMaxMessageSize = 4 << 20

// Lookup returns the value of the first variable in names that is set to a
// non-empty value, and that variable's name. lookup is os.LookupEnv when nil.
func Lookup(names []string, lookup func(string) (string, bool)) (value, name string) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	for _, n := range names {
		if v, ok := lookup(n); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), n
		}
	}
	return "", ""
}

// HostPort strips an optional grpc://, grpcs:// or tcp:// scheme from an
// address, as some deployments write addresses with one.
func HostPort(addr string) string {
	for _, p := range []string{"grpc://", "grpcs://", "tcp://"} {
		if strings.HasPrefix(addr, p) {
			return strings.TrimPrefix(addr, p)
		}
	}
	return addr
}

// RuntimeEnv builds the environment of a runtime instance with no master
// API: InstanceEnv for an instance named name, of a service named name,
// under the master of the profile's era.
func RuntimeEnv(base []string, profile Profile, addr, name string, extra []string) []string {
	return InstanceEnv(base, Instance{Era: profile.Era(), Service: name, Name: name, Address: addr}, extra)
}
