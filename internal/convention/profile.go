package convention

import (
	"fmt"
	"strings"
)

// Profile names the master a runtime is started as if by — the
// environment it is given (Instance.Vars of the era of the same name) —
// and the proto it is called with. conform, bench and call take it from
// --profile, through ParseProfile.
type Profile string

// The profiles.
const (
	// ProfileOpenEdge starts the runtime as OpenEdge 0.1.2's master does
	// (Instance.Vars says with which variables) and calls
	// /openedge.Function/Call.
	ProfileOpenEdge Profile = EraOpenEdge
	// ProfileBaetyl starts the runtime as Baetyl's master does and calls
	// /baetyl.Function/Call.
	ProfileBaetyl Profile = EraBaetyl
)

// Profiles lists the profiles, the default first.
var Profiles = []Profile{ProfileOpenEdge, ProfileBaetyl}

// ParseProfile returns the profile named s, or a *ProfileError.
func ParseProfile(s string) (Profile, error) {
	for _, p := range Profiles {
		if string(p) == s {
			return p, nil
		}
	}
	return "", &ProfileError{Name: s}
}

// Era is the era of the master whose environment the profile gives
// (EraOpenEdge or EraBaetyl).
func (p Profile) Era() string { return string(p) }

// ProfileError is a name that is not a profile.
type ProfileError struct {
	// Name is the name given.
	Name string
}

// Error says what was given and what is wanted: profile "x": want openedge
// or baetyl.
func (e *ProfileError) Error() string {
	names := make([]string, len(Profiles))
	for i, p := range Profiles {
		names[i] = string(p)
	}
	return fmt.Sprintf("profile %q: want %s", e.Name, strings.Join(names, " or "))
}
