package convention

import (
	"errors"
	"testing"
)

func TestParseProfile(t *testing.T) {
	for _, p := range Profiles {
		got, err := ParseProfile(string(p))
		if err != nil || got != p {
			t.Errorf("ParseProfile(%q) = %q, %v", p, got, err)
		}
	}
	// Names are exact: no case folding, no spaces, no empty default.
	for _, s := range []string{"", "mqtt", "OpenEdge", " baetyl", "baetyl ", "openedge,baetyl"} {
		got, err := ParseProfile(s)
		var pe *ProfileError
		if !errors.As(err, &pe) || pe.Name != s || got != "" {
			t.Errorf("ParseProfile(%q) = %q, %v: want a *ProfileError", s, got, err)
			continue
		}
		if want := `profile "` + s + `": want openedge or baetyl`; err.Error() != want {
			t.Errorf("ParseProfile(%q): %q, want %q", s, err, want)
		}
	}
}

// Each profile gives its era's environment.
func TestProfileEra(t *testing.T) {
	if ProfileOpenEdge.Era() != EraOpenEdge || ProfileBaetyl.Era() != EraBaetyl {
		t.Error("a profile's era is the era of the same name")
	}
	env := envMap(RuntimeEnv(nil, ProfileOpenEdge, "127.0.0.1:1", "x", nil))
	if _, ok := env["BAETYL_SERVICE_INSTANCE_ADDRESS"]; ok {
		t.Errorf("openedge: Baetyl's variables set: %v", env)
	}
}
