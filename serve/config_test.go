package serve

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/internal/convention"
)

// TestParseConfigErrors feeds every kind of bad input to ParseConfig: each
// must be refused with a message that names the file and, where the YAML
// gives one, the line.
func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error, in any order
	}{
		// YAML syntax: always a file and a line, counted from 1.
		{"syntax: unclosed flow list", "name: x\n\nlogger: [\n", []string{"s.yml:3: did not find expected node content"}},
		{"syntax: stray brace", "name: x\n}\n", []string{"s.yml:2: did not find expected key"}},
		{"syntax: tab indentation", "name: x\nserver:\n\taddress: a\n", []string{"s.yml:3: found character that cannot start any token"}},
		{"syntax: first line", "a: b: c\n", []string{"s.yml:1: mapping values are not allowed in this context"}},
		{"syntax: bad first character", "\tname: x\n", []string{"s.yml:1: found character that cannot start any token"}},
		{"syntax: unterminated quote", "name: x\nserver:\n  address: 'a\n", []string{"s.yml:3: found unexpected end of stream"}},
		{"syntax: list item out of place", "name: x\nfunctions:\n  - name: a\n  handler: b\n", []string{"s.yml:3: did not find expected '-' indicator"}},
		{"duplicate key", "name: a\nname: b\n", []string{`s.yml:2: mapping key "name" already defined at line 1`}},

		// Unknown keys anywhere, with the line and the block they are in.
		{"unknown key: top level", "name: x\nnmae: x\n", []string{`s.yml:2: unknown key "nmae"`}},
		{"unknown key: server", "server:\n  adress: x\n", []string{`s.yml:2: unknown key "adress" in server`}},
		{"unknown key: server.message", "server:\n  message:\n    lenght: 5\n", []string{`s.yml:3: unknown key "lenght" in server.message`}},
		{"unknown key: server.message.length", "server:\n  message:\n    length:\n      maximum: 5\n", []string{`s.yml:4: unknown key "maximum" in server.message.length`}},
		{"unknown key: server.concurrent", "server:\n  concurrent:\n    mx: 5\n", []string{`s.yml:3: unknown key "mx" in server.concurrent`}},
		{"unknown key: server.workers", "server:\n  workers:\n    count: 5\n", []string{`s.yml:3: unknown key "count" in server.workers`}},
		{"unknown key: a function", "functions:\n  - name: a\n    handler: echo\n  - name: b\n    handler: echo\n    codir: x\n", []string{`s.yml:6: unknown key "codir" in functions[1]`}},
		{"unknown key: logger", "logger:\n  paht: x\n", []string{`s.yml:2: unknown key "paht" in logger`}},
		{"unknown keys: all of them", "nmae: x\nserver:\n  adress: y\nlogger:\n  levl: info\n", []string{
			`s.yml:1: unknown key "nmae"`, `s.yml:3: unknown key "adress" in server`, `s.yml:5: unknown key "levl" in logger`}},

		// Wrong types.
		{"not a mapping", "- a\n", []string{"s.yml:1: the configuration: want a mapping with the keys name, server, functions, logger; got a list"}},
		{"server not a mapping", "server: x\n", []string{`s.yml:1: server: want a mapping with the keys address, timeout, message, concurrent, call, idle, workers, ca, key, cert; got a string "x"`}},
		{"a block not a mapping", "server:\n  concurrent: 5\n", []string{`s.yml:2: server.concurrent: want a mapping with the key max; got a number "5"`}},
		{"a function not a mapping", "functions:\n  - x\n", []string{`s.yml:2: functions[0]: want a mapping with the keys name, handler, codedir; got a string "x"`}},
		{"a string that is a list", "functions:\n  - name: [x]\n", []string{"s.yml:2: functions[0].name: want a string; got a list"}},
		{"functions not a list", "functions: 3\n", []string{`s.yml:1: functions: want a list of mappings with the keys name, handler, codedir; got a number "3"`}},
		{"functions a mapping", "functions: {a: 1}\n", []string{"s.yml:1: functions: want a list of mappings with the keys name, handler, codedir; got a mapping"}},
		{"concurrent.max not a number", "server:\n  concurrent:\n    max: many\n", []string{`s.yml:3: server.concurrent.max: "many": want a whole number from 0 to 4294967295`}},
		{"workers.max negative", "server:\n  workers:\n    max: -1\n", []string{`s.yml:3: server.workers.max: "-1": want a whole number`}},
		{"workers.max not whole", "server:\n  workers:\n    max: 1.5\n", []string{`s.yml:3: server.workers.max: "1.5": want a whole number`}},
		{"explicit tag mismatch", "name: !!int x\n", []string{"cannot decode a string `x` as a number"}},

		// Sizes.
		{"size: a word", "server:\n  message:\n    length:\n      max: lots\n", []string{`s.yml:4: server.message.length.max: size "lots": want a number of bytes or a number with a unit`}},
		{"size: unknown unit", "server:\n  message:\n    length:\n      max: 4x\n", []string{`s.yml:4: server.message.length.max: size "4x"`}},
		{"size: a mapping", "server:\n  message:\n    length:\n      max: {a: 1}\n", []string{"s.yml:4: server.message.length.max: want a size such as 4m, 512k or 4194304; got a mapping"}},
		{"size: zero", "server:\n  message:\n    length:\n      max: 0\n", []string{"s.yml: server.message.length.max must be positive"}},
		{"size: negative", "server:\n  message:\n    length:\n      max: -5\n", []string{`s.yml:4: server.message.length.max: size "-5": want a number of bytes`}},
		{"size: overflow", "server:\n  message:\n    length:\n      max: 99999999999999999999999\n", []string{`s.yml:4: server.message.length.max: size "99999999999999999999999" is too large`}},
		{"size: overflow with unit", "server:\n  message:\n    length:\n      max: 100000000000g\n", []string{`s.yml:4: server.message.length.max: size "100000000000g" is too large`}},

		// Durations.
		{"duration: a fraction with no unit", "server:\n  timeout: 5.5\n", []string{`s.yml:2: server.timeout: duration "5.5": want a number with a unit such as 30s or 500ms, or an integer of nanoseconds`}},
		{"duration: a word", "server:\n  timeout: soon\n", []string{`s.yml:2: server.timeout: duration "soon"`}},
		{"duration: a list", "server:\n  timeout: [1s]\n", []string{"s.yml:2: server.timeout: want a duration such as 30s, 500ms or 5000000000 (nanoseconds); got a list"}},
		{"duration: negative", "server:\n  timeout: -1s\n", []string{"s.yml: server.timeout must not be negative"}},
		{"call timeout: zero", "server:\n  call:\n    timeout: 0s\n", []string{"s.yml: server.call.timeout must be positive"}},
		{"idle timeout: negative", "server:\n  idle:\n    timeout: -1m\n", []string{"s.yml: server.idle.timeout must be positive"}},
		{"unknown key: server.call", "server:\n  call:\n    timout: 1s\n", []string{`s.yml:3: unknown key "timout" in server.call`}},

		// Functions.
		{"duplicate function", "functions:\n  - {name: a, handler: echo}\n  - {name: a, handler: none}\n", []string{`s.yml: function "a" is configured twice`}},
		{"empty handler", "functions:\n  - {name: a}\n", []string{`s.yml: function "a": handler is empty`}},
		{"empty name", "functions:\n  - {handler: echo}\n", []string{"s.yml: functions[0]: name is empty"}},
		{"unknown handler", "functions:\n  - {name: a, handler: sayhi.handler}\n", []string{`s.yml: function "a" (functions[0].handler): unknown handler "sayhi.handler": want one of context, echo, fail, none, sleep, or exec:PROGRAM`}},
		{"exec without program", "functions:\n  - {name: a, handler: 'exec:  '}\n", []string{`s.yml: function "a" (functions[0].handler): exec: handler names no program`}},

		// TLS.
		{"key without cert", "server:\n  key: k.pem\n", []string{"s.yml: server: TLS needs both key and cert"}},
		{"cert without key", "server:\n  cert: c.pem\n", []string{"s.yml: server: TLS needs both key and cert"}},
		{"ca without cert", "server:\n  ca: ca.pem\n", []string{"s.yml: server: ca (mutual TLS) needs key and cert too"}},

		// Logger.
		{"bad logger level", "logger:\n  level: loud\n", []string{`s.yml: logger.level "loud": want debug, info, warn or error`}},
		{"bad logger format", "logger:\n  format: xml\n", []string{`s.yml: logger.format "xml": want text or json`}},
		{"negative logger.size.max", "logger:\n  size:\n    max: -1\n", []string{`s.yml:3: logger.size.max: "-1": want a whole number from 0 to 4294967295`}},
		{"logger.age.max not a number", "logger:\n  age:\n    max: old\n", []string{`s.yml:3: logger.age.max: "old": want a whole number`}},
		{"unknown key: logger.backup", "logger:\n  backup:\n    count: 3\n", []string{`s.yml:3: unknown key "count" in logger.backup`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("s.yml", []byte(tc.yaml))
			require.Error(t, err)
			assert.Nil(t, c)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "!!", "YAML tags are spelt as words")
			for _, goType := range []string{"struct {", "serve.", "uint32", "[]", " into "} {
				assert.NotContains(t, err.Error(), goType, "no Go types in messages")
			}
			assert.False(t, strings.HasPrefix(err.Error(), "yaml:"), "the file comes first: %s", err)
		})
	}
}

func TestParseConfigValues(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, c *Config)
	}{
		{"empty file means defaults", "", func(t *testing.T, c *Config) { assert.Equal(t, DefaultConfig(), c) }},
		{"comments only means defaults", "# nothing here\n\n", func(t *testing.T, c *Config) { assert.Equal(t, DefaultConfig(), c) }},
		{"empty mapping means defaults", "{}\n", func(t *testing.T, c *Config) { assert.Equal(t, DefaultConfig(), c) }},
		{"size 4m", "server:\n  message:\n    length:\n      max: 4m\n", func(t *testing.T, c *Config) {
			assert.Equal(t, Size(4<<20), c.Server.Message.Length.Max)
		}},
		{"size 512k", "server:\n  message:\n    length:\n      max: 512k\n", func(t *testing.T, c *Config) {
			assert.Equal(t, Size(512<<10), c.Server.Message.Length.Max)
		}},
		{"size in plain bytes", "server:\n  message:\n    length:\n      max: 1048576\n", func(t *testing.T, c *Config) {
			assert.Equal(t, Size(1<<20), c.Server.Message.Length.Max)
		}},
		{"size 1MiB", "server:\n  message:\n    length:\n      max: 1MiB\n", func(t *testing.T, c *Config) {
			assert.Equal(t, Size(1<<20), c.Server.Message.Length.Max)
		}},
		{"size 8M quoted", "server:\n  message:\n    length:\n      max: \"8M\"\n", func(t *testing.T, c *Config) {
			assert.Equal(t, Size(8<<20), c.Server.Message.Length.Max)
		}},
		{"durations", "server:\n  timeout: 1m30s\n", func(t *testing.T, c *Config) {
			assert.Equal(t, Duration(90*time.Second), c.Server.Timeout)
		}},
		{"Baetyl's logger block", "logger:\n  path: var/log/baetyl/service.log\n  level: \"debug\"\n  format: text\n  age:\n    max: 15\n  size:\n    max: 50\n  backup:\n    max: 15\n", func(t *testing.T, c *Config) {
			assert.Equal(t, "var/log/baetyl/service.log", c.Logger.Path)
			assert.Equal(t, Count(15), c.Logger.Age.Max)
			assert.Equal(t, Count(50), c.Logger.Size.Max)
			assert.Equal(t, Count(15), c.Logger.Backup.Max)
			assert.True(t, c.Logger.Rotation())
		}},
		{"limits", "server:\n  concurrent:\n    max: 8\n  call:\n    timeout: 5s\n  idle:\n    timeout: 1m\n", func(t *testing.T, c *Config) {
			assert.Equal(t, Count(8), c.Server.Concurrent.Max)
			assert.Equal(t, Duration(5*time.Second), c.Server.Call.Timeout)
			assert.Equal(t, Duration(time.Minute), c.Server.Idle.Timeout)
		}},
		{"zero grace", "server:\n  timeout: 0s\n", func(t *testing.T, c *Config) { assert.Equal(t, Duration(0), c.Server.Timeout) }},
		{"logger levels and formats in any case", "logger:\n  level: WARNING\n  format: JSON\n", func(t *testing.T, c *Config) {
			assert.Equal(t, "WARNING", c.Logger.Level)
			assert.Equal(t, "JSON", c.Logger.Format)
		}},
		{"the whole convention", `name: myrt
server:
  address: 127.0.0.1:50051
  timeout: 30s
  message:
    length:
      max: 4m
  concurrent:
    max: 100
  workers:
    max: 8
  ca: ca.pem
  key: key.pem
  cert: cert.pem
functions:
  - name: sayhi
    handler: echo
    codedir: var/db/openedge/function-sayhi
  - name: upper
    handler: exec:tr a-z A-Z
logger:
  path: var/log/openedge/service.log
  level: debug
  format: json
`, func(t *testing.T, c *Config) {
			want := DefaultConfig()
			want.Name = "myrt"
			want.Server.Address = "127.0.0.1:50051"
			want.Server.Timeout = Duration(30 * time.Second)
			want.Server.Message.Length.Max = 4 << 20
			want.Server.Concurrent.Max = 100
			want.Server.Workers.Max = 8
			want.Server.CA, want.Server.Key, want.Server.Cert = "ca.pem", "key.pem", "cert.pem"
			want.Functions = []FunctionConfig{
				{Name: "sayhi", Handler: "echo", CodeDir: "var/db/openedge/function-sayhi"},
				{Name: "upper", Handler: "exec:tr a-z A-Z"},
			}
			want.Logger = LoggerConfig{Path: "var/log/openedge/service.log", Level: "debug", Format: "json"}
			assert.Equal(t, want, c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("s.yml", []byte(tc.yaml))
			require.NoError(t, err)
			require.NotNil(t, c)
			tc.check(t, c)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	assert.Equal(t, Size(4194304), c.Server.Message.Length.Max, "the convention's 4 MiB")
	assert.Equal(t, Duration(DefaultGrace), c.Server.Timeout)
	assert.Empty(t, c.Functions, "no functions means the fixtures")
	assert.Empty(t, c.Server.Address)
	assert.Equal(t, Count(64), c.Server.Concurrent.Max, "as many as the benchmark's callers on one connection")
	assert.Equal(t, Duration(30*time.Second), c.Server.Call.Timeout, "the function manager's call timeout")
	assert.Equal(t, Duration(2*time.Minute), c.Server.Idle.Timeout)
}

func TestDefaultConfigPath(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "etc/openedge/service.yml"},
		{map[string]string{"BAETYL_SERVICE_NAME": "svc"}, "etc/baetyl/service.yml"},
		{map[string]string{"BAETYL_SERVICE_INSTANCE_NAME": "svc.f.1"}, "etc/baetyl/service.yml"},
		{map[string]string{"BAETYL_SERVICE_INSTANCE_ADDRESS": "127.0.0.1:1"}, "etc/baetyl/service.yml"},
		{map[string]string{"BAETYL_SERVICE_NAME": " "}, "etc/openedge/service.yml"},
		{map[string]string{"BAETYL_MASTER_API_VERSION": "v1", "OPENEDGE_SERVICE_NAME": "x"}, "etc/openedge/service.yml"},
	} {
		got, why := DefaultConfigPath(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		assert.Equal(t, tc.want, got, "%v", tc.env)
		assert.NotEmpty(t, why)
	}
}

// TestValueForms reads every row of the convention's table of value
// forms (docs/convention.md): durations as strings and as integer
// nanoseconds, sizes with and without units, fractional sizes.
func TestValueForms(t *testing.T) {
	for _, f := range convention.ValueForms {
		var doc string
		if f.Duration() {
			doc = fmt.Sprintf("server:\n  timeout: %s\n", f.Written)
		} else {
			doc = fmt.Sprintf("server:\n  message:\n    length:\n      max: %s\n", f.Written)
		}
		c, err := ParseConfig("s.yml", []byte(doc))
		if !assert.NoError(t, err, "%s: %s", f.Key, f.Written) {
			continue
		}
		if f.Duration() {
			assert.Equal(t, Duration(f.Nanos), c.Server.Timeout, f.Written)
		} else {
			assert.Equal(t, Size(f.Bytes), c.Server.Message.Length.Max, f.Written)
		}
	}
	for _, bad := range []string{"1.5", "5 s", "soon", "-"} {
		_, err := ParseDuration(bad)
		assert.Error(t, err, bad)
	}
	_, err := ParseConfig("s.yml", []byte("server:\n  message:\n    length:\n      max: -1\n"))
	assert.ErrorContains(t, err, `s.yml:4: server.message.length.max: size "-1"`)
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadConfig(filepath.Join(dir, "missing.yml"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "a missing file is recognisable, so the command can treat the default path as optional")

	path := filepath.Join(dir, "service.yml")
	require.NoError(t, os.WriteFile(path, []byte("name: a\nserver:\n  timeout: 2s\n"), 0o644))
	c, err := LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, "a", c.Name)
	assert.Equal(t, Duration(2*time.Second), c.Server.Timeout)

	require.NoError(t, os.WriteFile(path, []byte("name: a\nserver:\n  tmeout: 2s\n"), 0o644))
	_, err = LoadConfig(path)
	assert.ErrorContains(t, err, path+`:3: unknown key "tmeout" in server`, "errors name the file as given")
}

// FuzzParseConfig: whatever the bytes, ParseConfig returns either a
// configuration that passes its own validation or an error that names the
// file — never a panic, never both, never neither.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"name: x\n",
		"server:\n  address: 127.0.0.1:50051\n  timeout: 30s\n",
		"server:\n  message:\n    length:\n      max: 4m\n",
		"server:\n  message:\n    length:\n      max: 99999999999999999999999\n",
		"server:\n  concurrent:\n    max: 10\n  workers:\n    max: 2\n",
		"server:\n  ca: a\n  key: b\n  cert: c\n",
		"functions:\n  - {name: a, handler: echo}\n  - {name: b, handler: 'exec:./run.sh x'}\n",
		"functions:\n  - {name: a, handler: echo}\n  - {name: a, handler: echo}\n",
		"logger: {level: debug, format: json, path: x.log}\n",
		"server: [\n",
		"a: b: c\n",
		"\tname: x\n",
		"name: &a x\nserver:\n  timeout: *a\n",
		"x: &a [*a]\n",
		"server:\n  message:\n    lenght: 5\n",
		"- a\n",
		"name: !!binary x\n",
		"---\nname: a\n---\nname: b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("fuzz.yml", b)
		switch {
		case err == nil && c == nil:
			t.Fatal("neither a config nor an error")
		case err != nil && c != nil:
			t.Fatalf("both a config and an error: %v", err)
		case err != nil:
			if !strings.HasPrefix(err.Error(), "fuzz.yml:") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			if strings.Contains(err.Error(), "serve.") || strings.Contains(err.Error(), "struct {") {
				t.Fatalf("a Go type in the message: %v", err)
			}
		default:
			if verr := c.validate(); verr != nil {
				t.Fatalf("an accepted config fails validation: %v", verr)
			}
			if c.Server.Message.Length.Max <= 0 || c.Server.Timeout < 0 {
				t.Fatalf("bad limits accepted: %+v", c.Server)
			}
		}
	})
}

// serve's default paths and the variables by which it knows a Baetyl
// master are the era table's.
func TestDefaultPathsAreTheEraTables(t *testing.T) {
	assert.Equal(t, convention.EraOf(convention.EraOpenEdge).ConfigPath, OpenEdgeConfigPath)
	assert.Equal(t, convention.EraOf(convention.EraBaetyl).ConfigPath, BaetylConfigPath)
	assert.Equal(t, convention.EraOf(convention.EraBaetyl).MasterEnv, BaetylMasterEnv)
}
