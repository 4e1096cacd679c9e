package runtimeproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/oe-rt/oe-rt/internal/launch"
)

// Resolve makes a relative RUNTIME path (one with a slash) absolute:
// relative to dir, where the runtime is run (`--dir proj ./bin/rt` is
// proj/bin/rt), or, when it is not there, to the current directory
// (`--dir proj proj/bin/rt`). An absolute path, and a name without a slash
// (left for PATH), are returned as they are. With no dir, a relative path
// is made absolute whether or not it exists (launch.Start then names what
// is wrong with it); with a dir, a path found in neither place is a
// *NotFoundError, which names both.
func Resolve(path, dir string) (string, error) {
	if !strings.Contains(path, "/") || filepath.IsAbs(path) {
		return path, nil
	}
	var tried []string
	for _, base := range []string{dir, "."} {
		if base == "" {
			continue
		}
		p, err := filepath.Abs(filepath.Join(base, path))
		if err != nil {
			return "", fmt.Errorf("runtime %s: %w", path, err)
		}
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if dir == "" {
		abs, _ := filepath.Abs(path)
		return abs, nil
	}
	return "", &NotFoundError{Path: path, Tried: tried}
}

// NotFoundError is a relative RUNTIME path found neither under --dir nor
// in the current directory. It matches launch.ErrStart.
type NotFoundError struct {
	// Path is the path as given.
	Path string
	// Tried are the absolute paths looked at, --dir's first.
	Tried []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("runtime %s: no such file: neither %s", e.Path, strings.Join(e.Tried, " nor "))
}

// Is reports whether target is launch.ErrStart.
func (e *NotFoundError) Is(target error) bool { return target == launch.ErrStart }
