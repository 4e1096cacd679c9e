package convention

// ValueForm is one way of writing a configuration value that Baetyl's
// runtimes or its function manager accept. Every oe-rt runtime (serve and
// the templates) reads every form, so that one service.yml serves them all.
// docs/convention.md shows the same table; a test keeps the two together,
// and the templates render it into their own tests.
type ValueForm struct {
	// Key is the configuration key: server.timeout (a duration) or
	// server.message.length.max (a size).
	Key string
	// Written is the value as it stands in the YAML file.
	Written string
	// Nanos is what a duration reads as, in nanoseconds.
	Nanos int64
	// Bytes is what a size reads as, in bytes.
	Bytes int64
	// Who says who writes or reads the form.
	Who string
}

// Duration reports whether f is a duration (else it is a size).
func (f ValueForm) Duration() bool { return f.Key == "server.timeout" }

// ValueForms are the value forms of durations and sizes. Sources, in
// baetyl/baetyl 1.0.0: baetyl-function-python3/function-python3.py and
// baetyl-function-node8/function-node8.js read server.timeout as integer
// nanoseconds (timeout / 1e9) and server.message.length.max as integer
// bytes; the function manager (sdk/baetyl-go/config.go, decoded with
// gopkg.in/yaml.v2) reads a time.Duration as a duration string or integer
// nanoseconds, and a size (utils.Length) with go-units' RAMInBytes: bytes,
// 1024-based units, fractions.
var ValueForms = []ValueForm{
	{Key: "server.timeout", Written: "5000000000", Nanos: 5e9, Who: "integer nanoseconds: Baetyl's Python and Node runtimes, yaml.v2's time.Duration"},
	{Key: "server.timeout", Written: "5s", Nanos: 5e9, Who: "a Go duration string: the function manager, oe-rt's examples"},
	{Key: "server.timeout", Written: "1m30s", Nanos: 90e9, Who: "a Go duration string of several units"},
	{Key: "server.timeout", Written: "1.5s", Nanos: 1.5e9, Who: "a fractional duration string"},
	{Key: "server.timeout", Written: "500ms", Nanos: 500e6, Who: "milliseconds"},
	{Key: "server.timeout", Written: "0", Nanos: 0, Who: "no grace period"},
	{Key: "server.message.length.max", Written: "4194304", Bytes: 4 << 20, Who: "integer bytes: Baetyl's Python and Node runtimes"},
	{Key: "server.message.length.max", Written: "4m", Bytes: 4 << 20, Who: "a 1024-based unit: the function manager's examples"},
	{Key: "server.message.length.max", Written: "512k", Bytes: 512 << 10, Who: "kilobytes (1024)"},
	{Key: "server.message.length.max", Written: "4MiB", Bytes: 4 << 20, Who: "a unit with iB"},
	{Key: "server.message.length.max", Written: "4MB", Bytes: 4 << 20, Who: "a unit with B: still 1024-based, as go-units' RAMInBytes reads it"},
	{Key: "server.message.length.max", Written: "4.5m", Bytes: 4718592, Who: "a fractional size, rounded down to whole bytes"},
	{Key: "server.message.length.max", Written: "1g", Bytes: 1 << 30, Who: "gigabytes (1024³)"},
}
