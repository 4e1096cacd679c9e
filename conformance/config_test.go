package conformance_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

// A configuration error about one field names the field and says the
// problem in words that follow its name, so that the command line can
// name its flag; the message stays the library's own.
func TestConfigErrorField(t *testing.T) {
	for _, tc := range []struct {
		name           string
		edit           func(*conformance.Config)
		field, problem string
		msg            string
	}{
		{"start timeout", func(c *conformance.Config) { c.StartTimeout = 0 }, "StartTimeout", "must be positive, got 0s", "the start timeout must be positive, got 0s"},
		{"grace", func(c *conformance.Config) { c.Grace = -time.Second }, "Grace", "must be positive, got -1s", "the grace period must be positive, got -1s"},
		{"repeat", func(c *conformance.Config) { c.Repeat = -2 }, "Repeat", "must not be negative, got -2", "the repeat count must not be negative, got -2"},
		{"thread limit", func(c *conformance.Config) { c.ThreadLimit = 0 }, "ThreadLimit", "must be at least 1, got 0", "the thread limit must be at least 1, got 0"},
		{"role", func(c *conformance.Config) { c.Functions = map[string]string{"echo": "e", "bogus": "x"} }, "Functions",
			`"bogus=x": unknown role "bogus": want one of echo, context, none, fail, sleep`, `function role "bogus": want one of`},
		{"run", func(c *conformance.Config) { c.Run = []string{"echo.json", "nope.*"} }, "Run", `"nope.*": no check matches (see oe-rt conform --list)`, `no check matches "nope.*"`},
		{"skip", func(c *conformance.Config) { c.Skip = []string{"nope"} }, "Skip", `"nope": no check matches (see oe-rt conform --list)`, `no check matches "nope"`},
		{"env", func(c *conformance.Config) { c.Env = []string{"A=1", "B"} }, "Env", `"B": want K=V`, `environment entry "B": want K=V`},
		{"reserved env", func(c *conformance.Config) { c.Env = []string{"OPENEDGE_SERVICE_ADDRESS=x"} }, "Env",
			`"OPENEDGE_SERVICE_ADDRESS=x": the harness sets OPENEDGE_SERVICE_ADDRESS itself (to the address and name it gives the runtime); use --profile to choose which variables`,
			"the harness sets OPENEDGE_SERVICE_ADDRESS itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := conformance.NewConfig("/bin/true")
			tc.edit(cfg)
			err := cfg.Validate()
			var ce *conformance.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.Equal(t, tc.problem, ce.Problem)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
	// A problem of no single field names none.
	err := conformance.NewConfig().Validate()
	var ce *conformance.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Empty(t, ce.Field)
	assert.NoError(t, conformance.NewConfig("/bin/true").Validate(), "the defaults are valid")
}
