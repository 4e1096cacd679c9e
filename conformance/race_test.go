//go:build race

package conformance_test

// raceEnabled: this test binary runs with the race detector, whose runtime
// multiplies a fake runtime's memory (see fakeBin).
const raceEnabled = true
