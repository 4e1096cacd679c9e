//go:build !unix

package cli

import "io"

// termWidth is 0 where conform does not ask the terminal its width: the
// text report writes each message on one line, and the terminal wraps it.
func termWidth(io.Writer) int { return 0 }
