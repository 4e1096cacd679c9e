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

// MasterEnv lists the variables that grant access to the main program's API.
// Dynamically started instances have no such rights, so a launcher that acts
// as the function manager removes them from the environment it passes on.
var MasterEnv = []string{
	"OPENEDGE_MASTER_API",
	"OPENEDGE_MASTER_API_ADDRESS",
	"OPENEDGE_MASTER_API_VERSION",
	"OPENEDGE_SERVICE_TOKEN",
	"BAETYL_MASTER_API",
	"BAETYL_MASTER_API_ADDRESS",
	"BAETYL_MASTER_API_VERSION",
	"BAETYL_SERVICE_TOKEN",
}

// DefaultConfigPath is where a runtime looks for its configuration when no
// -c flag is given.
const DefaultConfigPath = "etc/openedge/service.yml"

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

// RuntimeEnv builds the environment a launcher hands a runtime instance:
// base (usually os.Environ()) without the master-API variables and without
// any address or name variable, plus the profile's address and name
// variables ("baetyl": BAETYL_SERVICE_INSTANCE_*, else
// OPENEDGE_SERVICE_ADDRESS and OPENEDGE_SERVICE_NAME), plus extra (K=V).
func RuntimeEnv(base []string, profile, addr, name string, extra []string) []string {
	drop := map[string]bool{}
	for _, list := range [][]string{MasterEnv, AddressEnv, NameEnv} {
		for _, k := range list {
			drop[k] = true
		}
	}
	var env []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	if profile == "baetyl" {
		env = append(env, "BAETYL_SERVICE_INSTANCE_ADDRESS="+addr, "BAETYL_SERVICE_INSTANCE_NAME="+name)
	} else {
		env = append(env, "OPENEDGE_SERVICE_ADDRESS="+addr, "OPENEDGE_SERVICE_NAME="+name)
	}
	return append(env, extra...)
}
