// Package size parses byte sizes as oe-rt's flags and bounds write them:
// a number of bytes (4194304) or a number with a 1024-based unit (512k, 4m,
// 1g, 1.5MiB; any case, an optional "b" or "ib"). It is the one size parser
// of oe-rt, built on github.com/docker/go-units, so that --max-msg-size,
// --payload-size, --limit-memory and --assert rss<1g take the same values.
package size

import (
	"fmt"
	"strings"

	units "github.com/docker/go-units"
)

// Parse parses s. It rejects negative sizes, sizes that do not fit in an
// int64, and anything that is not a size, with a message that shows the
// accepted forms.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" || strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		return 0, fmt.Errorf("size %q: want a number of bytes or a number with a unit k, m or g (1024-based), e.g. 512, 64k, 4m", s)
	}
	n, err := units.RAMInBytes(t)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number of bytes or a number with a unit k, m or g (1024-based), e.g. 512, 64k, 4m", s)
	}
	if n < 0 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n, nil
}

// Format writes n the way Parse reads it back: the largest 1024-based unit
// that divides n exactly (4m, 1536k, 1g), else bytes.
func Format(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return fmt.Sprint(n)
}
