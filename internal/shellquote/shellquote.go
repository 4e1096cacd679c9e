// Package shellquote quotes words for a POSIX shell, so that a command oe-rt
// prints (a next step, a corrected command line) can be pasted as it is.
// It is the one shell quoter of oe-rt.
package shellquote

import "strings"

// safe are the bytes that need no quoting in any POSIX shell word.
const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+,:@%="

// Quote returns s as one shell word: as it is when it holds only safe
// characters, else in single quotes, each single quote inside it closing
// the quotes, escaped, and opening them again. The empty string becomes a
// pair of single quotes.
func Quote(s string) string {
	if s != "" && strings.Trim(s, safe) == "" && !strings.HasPrefix(s, "=") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each word and joins them with spaces.
func Join(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
