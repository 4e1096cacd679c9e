package cli

import (
	"io"
	"os"
)

// isTerminal reports whether w is a terminal: a character device other
// than the null device. A progress line that redraws itself, a live report
// and colour are for terminals only.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return false
	}
	return true
}

// colorOK reports whether to colour what goes to w: on a terminal, when
// colour is allowed.
func (e *env) colorOK(w io.Writer) bool {
	return isTerminal(w) && e.colorAllowed()
}

// colorAllowed: unless NO_COLOR is set to a non-empty value (no-color.org:
// an empty NO_COLOR does not count) or TERM is dumb.
func (e *env) colorAllowed() bool {
	return e.getenv("NO_COLOR") == "" && e.getenv("TERM") != "dumb"
}
