package bench_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/bench"
)

// A configuration error about one field names the field and says the
// problem in words that follow its name, so that the command line can
// name its flag; the message stays the library's own.
func TestConfigErrorField(t *testing.T) {
	for _, tc := range []struct {
		name           string
		edit           func(*bench.Config)
		field, problem string
	}{
		{"function", func(c *bench.Config) { c.Function = "" }, "Function", "must not be empty"},
		{"concurrency", func(c *bench.Config) { c.Concurrency = 0 }, "Concurrency", "must be at least 1, got 0"},
		{"connections", func(c *bench.Config) { c.Connections = 0 }, "Connections", "must be at least 1, got 0"},
		{"connections past the callers", func(c *bench.Config) { c.Concurrency, c.Connections = 2, 4 }, "Connections", "4 is more than the 2 callers of {Concurrency}"},
		{"no calls", func(c *bench.Config) { c.Total = 0 }, "Total", "must be at least 1, got 0"},
		{"negative calls", func(c *bench.Config) { c.Total = -3 }, "Total", "must be at least 1, got -3"},
		{"negative calls with a duration", func(c *bench.Config) { c.Total = -3; c.Duration = time.Second }, "Total", "must not be negative, got -3"},
		{"duration", func(c *bench.Config) { c.Total = 0; c.Duration = -time.Second }, "Duration", "must not be negative, got -1s"},
		{"rps", func(c *bench.Config) { c.RPS = -5 }, "RPS", "must be a finite number of calls per second, 0 or more, got -5"},
		{"rps NaN", func(c *bench.Config) { c.RPS = math.NaN() }, "RPS", "must be a finite number of calls per second, 0 or more, got NaN"},
		{"warmup", func(c *bench.Config) { c.Warmup = -time.Second }, "Warmup", "must not be negative, got -1s"},
		{"timeout", func(c *bench.Config) { c.Timeout = -time.Second }, "Timeout", "must not be negative, got -1s"},
		{"no single field", func(c *bench.Config) { c.Address = "" }, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bench.NewConfig()
			cfg.Address = "127.0.0.1:1"
			tc.edit(&cfg)
			var ce *bench.ConfigError
			require.ErrorAs(t, cfg.Validate(), &ce)
			assert.Equal(t, tc.field, ce.Field)
			assert.Equal(t, tc.problem, ce.Problem)
		})
	}
}
