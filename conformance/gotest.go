package conformance

import (
	"context"
	"testing"
)

// Test runs the suite inside `go test`: one subtest per check, failed for a
// failed MUST (and, with cfg.Strict, a failed SHOULD or MAY), skipped for a
// skipped check and for a known failure of cfg.Baseline. A harness error
// fails t at once.
func Test(t *testing.T, cfg *Config) *Report {
	t.Helper()
	ctx := t.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("conformance: %v", err)
	}
	t.Logf("conformance: seed %d (Config.Seed = %d sends the same sweep again)", rep.Seed, rep.Seed)
	if rep.Verdict == Interrupted {
		t.Errorf("conformance: %s", rep.Reason)
	}
	for _, r := range rep.Checks {
		t.Run(r.ID, func(t *testing.T) {
			switch {
			case r.Baseline == Known:
				t.Skipf("%s: %s", r.BaselineNote, r.Message)
			case r.Status == Fail || (r.Status == Warn && cfg.Strict):
				if r.Repro != "" {
					t.Logf("reproduce: %s", r.Repro)
				}
				for _, l := range r.Output {
					t.Logf("instance #%d %s | %s", l.Instance, l.Stream, l.Text)
				}
				if r.Hint != "" {
					t.Logf("how to fix: %s", r.Hint)
				}
				t.Errorf("%s %s: %s", r.Level, r.ID, r.Message)
			case r.Status == Warn:
				t.Logf("warning (%s): %s", r.Level, r.Message)
			case r.Status == Skip && (r.Level == MUST || cfg.Strict):
				t.Errorf("%s %s did not run: %s", r.Level, r.ID, r.Message)
			case r.Status == Error:
				t.Errorf("%s %s: %s", r.Level, r.ID, r.Message)
			case r.Status == Skip:
				t.Skip(r.Message)
			default:
				t.Log(r.Message)
			}
		})
	}
	return rep
}
