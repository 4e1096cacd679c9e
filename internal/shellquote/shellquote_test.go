package shellquote

import (
	"os/exec"
	"testing"
)

// Every quoted word comes back from a real shell as it was.
func TestQuoteRoundTrip(t *testing.T) {
	words := []string{"plain", "", "with space", "it's", `"double"`, "$HOME", "a\nb", "@/tmp/x y", "*", "é✓", "back\\slash"}
	for _, w := range words {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(w)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != w {
			t.Errorf("Quote(%q) = %s, the shell read %q", w, Quote(w), out)
		}
	}
	if got := Join([]string{"oe-rt", "call", "a b"}); got != "oe-rt call 'a b'" {
		t.Errorf("Join = %s", got)
	}
}
