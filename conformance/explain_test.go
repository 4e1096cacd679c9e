package conformance_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

// Every check carries a hint and an explain page with its rule, why it
// exists in the convention's own words, how it is measured and how to fix
// it; the words quoted are the convention's.
func TestEveryCheckHasHintAndExplainPage(t *testing.T) {
	conv, err := os.ReadFile("../docs/convention.md")
	require.NoError(t, err)
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	convention := norm(string(conv))
	for _, c := range conformance.Catalog() {
		assert.NotEmpty(t, strings.TrimSpace(c.Hint), "%s has no hint", c.ID)
		page, err := conformance.Explain(c.ID, nil)
		require.NoError(t, err, c.ID)
		for _, h := range []string{"## Rule", "## Why", "## How conform measures it", "## How to fix"} {
			assert.Contains(t, page, h+"\n", "%s: explain page without %q", c.ID, h)
		}
		assert.Contains(t, page, c.Describe(nil), c.ID)
		why := page[strings.Index(page, "## Why"):strings.Index(page, "## How conform measures it")]
		quotes := regexp.MustCompile(`(?m)^> (.+)$`).FindAllStringSubmatch(why, -1)
		assert.NotEmpty(t, quotes, "%s: the Why section quotes no words of the convention", c.ID)
		for _, q := range quotes {
			assert.True(t, strings.Contains(convention, norm(q[1])), "%s quotes words that are not in docs/convention.md: %q", c.ID, q[1])
		}
		assert.NotRegexp(t, `\{[a-z]+\}`, page, "%s: a placeholder was left unfilled", c.ID)
	}
}

func TestExplainFillsTheConfiguredLimits(t *testing.T) {
	cfg := conformance.NewConfig()
	cfg.Grace = 3 * 1e9
	page, err := conformance.Explain("shutdown.sigterm", cfg)
	require.NoError(t, err)
	assert.Contains(t, page, "grace period (3s)")
	assert.Contains(t, page, "shutdown.sigterm — MUST (since catalog version 1)")
}

func TestExplainUnknownCheck(t *testing.T) {
	_, err := conformance.Explain("shutdown.drian", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did you mean")
	assert.Contains(t, err.Error(), "shutdown.drain")
	_, err = conformance.Explain("nothing", nil)
	assert.ErrorContains(t, err, "see --list")
}

// Validate rejects a check without a hint, one without an explain page, and
// a new check that no catalog version records.
func TestValidateWantsHintPageAndHistory(t *testing.T) {
	noHint := *conformance.Lookup("echo.json")
	noHint.Hint = " "
	err := conformance.Validate([]*conformance.Check{&noHint})
	assert.ErrorContains(t, err, "echo.json: no hint")

	fresh := *conformance.Lookup("echo.json")
	fresh.ID = "echo.fresh"
	err = conformance.Validate([]*conformance.Check{&fresh})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "echo.fresh: no explain page")
	assert.Contains(t, err.Error(), "echo.fresh: not in the catalog's history")

	assert.Equal(t, 1, conformance.Lookup("shutdown.drain").Since())
	assert.GreaterOrEqual(t, conformance.CatalogVersion, 1)
}
