package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/size"
)

// Config is the runtime's configuration: the keys of the convention's
// service.yml. The zero value is not useful; start from DefaultConfig or
// LoadConfig.
type Config struct {
	// Name is the instance name (config `name`, overridden by the
	// environment, see ResolveName).
	Name string `yaml:"name"`
	// Server configures the gRPC server.
	Server ServerConfig `yaml:"server"`
	// Functions lists the functions served. Empty means the built-in
	// conformance fixtures under their own names.
	Functions []FunctionConfig `yaml:"functions"`
	// Logger configures logging.
	Logger LoggerConfig `yaml:"logger"`
}

// ServerConfig is the `server` block.
type ServerConfig struct {
	// Address to listen on (host:port), used when no flag or environment
	// variable gives one.
	Address string `yaml:"address"`
	// Timeout is the grace period for shutdown: calls in flight when
	// SIGTERM arrives may run this long before the server closes them.
	Timeout Duration `yaml:"timeout"`
	// Message holds message.length.max, the largest message accepted or sent.
	Message struct {
		Length struct {
			Max Size `yaml:"max"`
		} `yaml:"length"`
	} `yaml:"message"`
	// Concurrent.Max bounds the calls served at once on one connection
	// (grpc-go's MaxConcurrentStreams; default DefaultConcurrentMax; 0: no
	// bound). With message.length.max it bounds what one connection can
	// make serve hold.
	Concurrent struct {
		Max Count `yaml:"max"`
	} `yaml:"concurrent"`
	// Call.Timeout is how long a call's response may make no progress
	// (the client does not read it) before serve closes the connection
	// (an oe-rt key; default DefaultCallTimeout, the function manager's
	// own call timeout).
	Call struct {
		Timeout Duration `yaml:"timeout"`
	} `yaml:"call"`
	// Idle.Timeout is how long a connection may carry no call before serve
	// closes it (an oe-rt key; default DefaultIdleTimeout). A connection
	// that has not completed its handshake is closed after
	// min(Idle.Timeout, HandshakeTimeout).
	Idle struct {
		Timeout Duration `yaml:"timeout"`
	} `yaml:"idle"`
	// Workers.Max sets a fixed pool of goroutines that serve calls
	// (0: one goroutine per call, grpc-go's default).
	Workers struct {
		Max Count `yaml:"max"`
	} `yaml:"workers"`
	// CA, Key and Cert configure TLS; with CA, clients must present a
	// certificate signed by it (mutual TLS).
	CA   string `yaml:"ca"`
	Key  string `yaml:"key"`
	Cert string `yaml:"cert"`
}

// FunctionConfig is one entry of `functions`.
type FunctionConfig struct {
	// Name is what callers put in FunctionName.
	Name string `yaml:"name"`
	// Handler selects the implementation: the name of a built-in fixture
	// (echo, context, none, fail, sleep), or `exec:PROGRAM [ARGS...]`.
	Handler string `yaml:"handler"`
	// CodeDir is the directory the handler's program is found in and run
	// from.
	CodeDir string `yaml:"codedir"`
}

// LoggerConfig is the `logger` block, with Baetyl's keys.
type LoggerConfig struct {
	// Path is a file to log to, created with its directory; empty means
	// standard error.
	Path string `yaml:"path"`
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
	// Age.Max, Size.Max and Backup.Max are Baetyl's rotation keys (days,
	// megabytes, files). serve accepts them, so that Baetyl's
	// configurations run unchanged, but does not rotate its log.
	Age struct {
		Max Count `yaml:"max"`
	} `yaml:"age"`
	Size struct {
		Max Count `yaml:"max"`
	} `yaml:"size"`
	Backup struct {
		Max Count `yaml:"max"`
	} `yaml:"backup"`
}

// Rotation reports whether any of the rotation keys is set.
func (c LoggerConfig) Rotation() bool {
	return c.Age.Max != 0 || c.Size.Max != 0 || c.Backup.Max != 0
}

// Defaults of the server block.
const (
	// DefaultGrace is the default of server.timeout.
	DefaultGrace = 10 * time.Second
	// DefaultConcurrentMax is the default of server.concurrent.max.
	DefaultConcurrentMax = 64
	// DefaultCallTimeout is the default of server.call.timeout.
	DefaultCallTimeout = 30 * time.Second
	// DefaultIdleTimeout is the default of server.idle.timeout.
	DefaultIdleTimeout = 2 * time.Minute
	// HandshakeTimeout bounds the TLS and HTTP/2 handshake of a new
	// connection (never more than server.idle.timeout).
	HandshakeTimeout = 10 * time.Second
)

// DefaultConfig returns the configuration used when no file is given: the
// built-in fixtures, 4 MiB messages, a 10 s grace period, and the limits'
// defaults.
func DefaultConfig() *Config {
	c := &Config{}
	c.Server.Timeout = Duration(DefaultGrace)
	c.Server.Message.Length.Max = convention.DefaultMaxMessageSize
	c.Server.Concurrent.Max = DefaultConcurrentMax
	c.Server.Call.Timeout = Duration(DefaultCallTimeout)
	c.Server.Idle.Timeout = Duration(DefaultIdleTimeout)
	c.Logger.Level = "info"
	c.Logger.Format = "text"
	return c
}

// LoadConfig reads a configuration file. Errors name the file and line:
// YAML syntax, unknown keys (a typo is never ignored), bad values.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, b)
}

var (
	yamlLine     = regexp.MustCompile(`^line (\d+): `)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type `)
)

// ParseConfig parses configuration from b; name is used in messages.
func ParseConfig(name string, b []byte) (*Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, configError(name, b, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// configError rewrites yaml's messages into "FILE:LINE: what" lines, in
// the config's words: the key, the shape of YAML expected, no Go types.
func configError(name string, b []byte, err error) error {
	var doc yaml.Node
	parsed := yaml.Unmarshal(b, &doc) == nil
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			lines = append(lines, name+":"+tidy(e, b, &doc))
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	var ve *valueError
	if errors.As(err, &ve) {
		if key, ok := keyAt(&doc, ve.node.Line, ve.node.Column, ve.node.Kind); ok && key != "" {
			return fmt.Errorf("%s:%d: %s: %s", name, ve.node.Line, key, ve.msg)
		}
		return fmt.Errorf("%s:%d: %s", name, ve.node.Line, ve.msg)
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if !parsed {
		msg = syntaxLine(msg, b)
	}
	return errors.New(name + ":" + tidy(msg, b, nil))
}

// valueError is a bad value found by one of the config's own types.
type valueError struct {
	node *yaml.Node
	msg  string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.node.Line, e.msg) }

// badValue says that n is not what want describes.
func badValue(n *yaml.Node, want string) error {
	if n.Kind != yaml.ScalarNode {
		return &valueError{n, fmt.Sprintf("want %s; got %s", want, kindName(n.Kind))}
	}
	return &valueError{n, fmt.Sprintf("%q: want %s", n.Value, want)}
}

// typeInto matches yaml's type mismatches, after tidy's renaming of tags.
var typeInto = regexp.MustCompile(`^cannot unmarshal (.+?) into (.+)$`)

// shapes says, for each Go type of Config as yaml names it in its
// messages, what YAML it takes.
var shapes = func() map[string]string {
	m := map[string]string{}
	var walk func(t reflect.Type) string
	walk = func(t reflect.Type) string {
		if d, ok := m[t.String()]; ok {
			return d
		}
		var d string
		switch {
		case t == reflect.TypeFor[Size]():
			d = "a size (4m, 512k or bytes)"
		case t == reflect.TypeFor[Duration]():
			d = "a duration (30s, 500ms or nanoseconds)"
		case t.Kind() == reflect.Struct:
			keys := make([]string, 0, t.NumField())
			for i := range t.NumField() {
				f := t.Field(i)
				key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				keys = append(keys, key)
				walk(f.Type)
			}
			d = "a mapping with the keys " + strings.Join(keys, ", ")
			if len(keys) == 1 {
				d = "a mapping with the key " + keys[0]
			}
		case t.Kind() == reflect.Slice:
			d = "a list of " + strings.TrimPrefix(walk(t.Elem()), "a ")
			d = strings.Replace(d, "list of mapping ", "list of mappings ", 1)
		case t.Kind() == reflect.String:
			d = "a string"
		default:
			d = "a whole number"
		}
		m[t.String()] = d
		return d
	}
	walk(reflect.TypeFor[Config]())
	return m
}()

// keyAt is the path (server.message, functions[1]) of the deepest value
// node of doc on line that is of kind and, when column is not 0, starts at
// column. ok is false when there is none; "" is the top level.
func keyAt(doc *yaml.Node, line, column int, kind yaml.Kind) (path string, ok bool) {
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, p string) {
		if n.Kind == kind && n.Line == line && (column == 0 || n.Column == column) {
			path, ok = p, true
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, p)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				sub := n.Content[i].Value
				if p != "" {
					sub = p + "." + sub
				}
				walk(n.Content[i+1], sub)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", p, i))
			}
		}
	}
	walk(doc, "")
	return path, ok
}

// kindName says what a YAML node is, in the words of the messages.
func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a scalar"
}

// gotKind is the node kind of yaml's "a list", "a mapping", "a string...".
func gotKind(got string) yaml.Kind {
	switch {
	case strings.HasPrefix(got, "a list"):
		return yaml.SequenceNode
	case strings.HasPrefix(got, "a mapping"):
		return yaml.MappingNode
	}
	return yaml.ScalarNode
}

// parserProblems are the messages of yaml's parser, as opposed to its
// scanner and decoder.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found undefined tag handle",
}

// syntaxLine makes the line number of a syntax error 1-based and present:
// yaml reports its parser's lines counted from 0 and its scanner's from 1,
// and leaves the number out when it is the first line. An error at the end
// of the input is put on its last line.
func syntaxLine(msg string, b []byte) string {
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		for _, p := range parserProblems {
			if msg == p {
				line++
				break
			}
		}
	}
	last := bytes.Count(b, []byte("\n"))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		last++
	}
	line = min(line, last)
	line = max(line, 1)
	return fmt.Sprintf("line %d: %s", line, msg)
}

// tidy turns one of yaml's messages into "LINE: what" (or " what" when
// yaml gives no line), in the config's words: unknown keys are named with
// the path of the block they are in, YAML tags as plain words, and, with
// doc, a type mismatch as the key and the shape of YAML it takes.
func tidy(msg string, b []byte, doc *yaml.Node) string {
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := ""
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line = m[1]
		msg = msg[len(m[0]):]
	}
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(line)
		msg = fmt.Sprintf("unknown key %q", m[1])
		if path := keyPath(b, m[1], n); path != "" {
			msg += " in " + path
		}
	}
	msg = strings.ReplaceAll(msg, "as a !!", "as !!")
	msg = strings.NewReplacer(
		"!!str", "a string", "!!int", "a number", "!!float", "a number", "!!bool", "a boolean",
		"!!seq", "a list", "!!map", "a mapping", "!!null", "null",
	).Replace(msg)
	if m := typeInto.FindStringSubmatch(msg); m != nil && doc != nil {
		n, _ := strconv.Atoi(line)
		shape, ok := shapes[m[2]]
		if !ok {
			shape = "another kind of value"
		}
		key, _ := keyAt(doc, n, 0, gotKind(m[1]))
		if key == "" {
			key = "the configuration"
		}
		msg = fmt.Sprintf("%s: want %s; got %s", key, shape, strings.ReplaceAll(m[1], "`", `"`))
	}
	if line != "" {
		return line + ": " + msg
	}
	return " " + msg
}

// keyPath returns the path of the mapping that holds key at line, such as
// server.message or functions[2]; "" for the top level or when not found.
func keyPath(b []byte, key string, line int) string {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil {
		return ""
	}
	var walk func(n *yaml.Node, path string) (string, bool)
	walk = func(n *yaml.Node, path string) (string, bool) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p, ok := walk(c, path); ok {
					return p, true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == key && k.Line == line {
					return path, true
				}
				sub := k.Value
				if path != "" {
					sub = path + "." + k.Value
				}
				if p, ok := walk(v, sub); ok {
					return p, true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if p, ok := walk(c, fmt.Sprintf("%s[%d]", path, i)); ok {
					return p, true
				}
			}
		}
		return "", false
	}
	p, _ := walk(&doc, "")
	return p
}

func (c *Config) validate() error {
	seen := map[string]bool{}
	for i, f := range c.Functions {
		switch {
		case f.Name == "":
			return fmt.Errorf("functions[%d]: name is empty", i)
		case f.Handler == "":
			return fmt.Errorf("function %q: handler is empty", f.Name)
		case seen[f.Name]:
			return fmt.Errorf("function %q is configured twice", f.Name)
		}
		if err := checkHandler(f.Handler); err != nil {
			return fmt.Errorf("function %q (functions[%d].handler): %w", f.Name, i, err)
		}
		seen[f.Name] = true
	}
	if (c.Server.Key == "") != (c.Server.Cert == "") {
		return errors.New("server: TLS needs both key and cert")
	}
	if c.Server.CA != "" && c.Server.Cert == "" {
		return errors.New("server: ca (mutual TLS) needs key and cert too")
	}
	if c.Server.Message.Length.Max <= 0 {
		return errors.New("server.message.length.max must be positive")
	}
	if c.Server.Timeout < 0 {
		return errors.New("server.timeout must not be negative")
	}
	if c.Server.Call.Timeout <= 0 {
		return errors.New("server.call.timeout must be positive")
	}
	if c.Server.Idle.Timeout <= 0 {
		return errors.New("server.idle.timeout must be positive")
	}
	switch strings.ToLower(c.Logger.Level) {
	case "", "debug", "info", "warn", "warning", "error":
	default:
		return fmt.Errorf("logger.level %q: want debug, info, warn or error", c.Logger.Level)
	}
	switch strings.ToLower(c.Logger.Format) {
	case "", "text", "json":
	default:
		return fmt.Errorf("logger.format %q: want text or json", c.Logger.Format)
	}
	return nil
}

// Default configuration files, relative to the working directory.
const (
	// OpenEdgeConfigPath is where OpenEdge's master puts an instance's
	// configuration (and where it is read when no master started serve).
	OpenEdgeConfigPath = "etc/openedge/service.yml" // convention.EraOf(convention.EraOpenEdge).ConfigPath
	// BaetylConfigPath is where Baetyl's master mounts it; it passes no -c.
	BaetylConfigPath = "etc/baetyl/service.yml" // convention.EraOf(convention.EraBaetyl).ConfigPath
)

// BaetylMasterEnv lists the variables by which serve knows that a Baetyl
// master started it: the master sets all three for every instance.
var BaetylMasterEnv = convention.EraOf(convention.EraBaetyl).MasterEnv

// DefaultConfigPath is the configuration file read when none is named:
// BaetylConfigPath when any variable of BaetylMasterEnv is set to a
// non-empty value, else OpenEdgeConfigPath. why says which variable
// decided. lookup is os.LookupEnv when nil.
func DefaultConfigPath(lookup func(string) (string, bool)) (path, why string) {
	if _, name := convention.Lookup(BaetylMasterEnv, lookup); name != "" {
		return BaetylConfigPath, "$" + name + " is set: started by a Baetyl master"
	}
	return OpenEdgeConfigPath, "no Baetyl master variable is set"
}

// Size is a byte count written as plain bytes (4194304) or with a unit
// (4m, 4MiB, 512k, 4.5m); units are binary (k = 1024). See
// convention.ValueForms.
type Size int64

// UnmarshalYAML parses a size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return badValue(n, "a size such as 4m, 512k or 4194304")
	}
	v, err := size.Parse(n.Value)
	if err != nil {
		return &valueError{n, err.Error()}
	}
	*s = Size(v)
	return nil
}

// Count is a whole number from 0 to 4294967295: a maximum, a number of
// days. Unlike a plain integer field, it refuses 1.5 rather than
// truncating it.
type Count uint32

// UnmarshalYAML parses a count.
func (c *Count) UnmarshalYAML(n *yaml.Node) error {
	v, err := strconv.ParseUint(strings.TrimSpace(n.Value), 10, 32)
	if n.Kind != yaml.ScalarNode || err != nil {
		return badValue(n, "a whole number from 0 to 4294967295")
	}
	*c = Count(v)
	return nil
}

// Duration is a time.Duration written as Go writes them (30s, 1m30s) or
// as an integer of nanoseconds (5000000000), the form Baetyl's runtimes
// read and yaml.v2 writes. See convention.ValueForms.
type Duration time.Duration

// UnmarshalYAML parses a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return badValue(n, "a duration such as 30s, 500ms or 5000000000 (nanoseconds)")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &valueError{n, err.Error()}
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a duration: a Go duration string (30s, 1m30s,
// 1.5s) or an integer of nanoseconds (5000000000, 0).
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		return time.Duration(n), nil
	}
	v, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a number with a unit such as 30s or 500ms, or an integer of nanoseconds", s)
	}
	return v, nil
}
