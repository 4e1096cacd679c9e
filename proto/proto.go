// Package proto holds the Function service definitions of the runtime
// convention: the OpenEdge one (package openedge) and the Baetyl one
// (package baetyl, which adds Timestamp = 10). The generated Go code lives in
// the openedge and baetyl subpackages; the .proto sources are embedded here so
// that the scaffold and the conformance suite can use them at run time.
package proto

import "embed"

//go:generate go run ./internal/gen -src . -out .

// Files holds openedge/function.proto and baetyl/function.proto.
//
//go:embed openedge/function.proto baetyl/function.proto
var Files embed.FS
