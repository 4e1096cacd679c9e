package conformance

// Calibration is what conform observed of the machine while it ran the
// timing checks.
type Calibration struct {
	Reference []string `json:"reference,omitempty"`
}
