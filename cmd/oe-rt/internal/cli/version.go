package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of oe-rt",
		Example: "  oe-rt version\n  oe-rt --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(e.stdout, versionLine())
			return writeFailed("version", err)
		},
	}
}

// versionLine is what oe-rt version and oe-rt --version print: the
// version (-ldflags's Version, else the module's version from the build
// information: a tag, or a pseudo-version when built from a checkout), the
// commit and whether the tree was modified when built from a checkout, the
// platform and the Go release.
func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return versionString(Version, bi, runtime.GOOS+"/"+runtime.GOARCH, runtime.Version())
}

// versionString builds the version line from its parts (bi may be nil).
func versionString(v string, bi *debug.BuildInfo, platform, goVersion string) string {
	commit, modified := "", false
	if bi != nil {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := "oe-rt " + v
	if commit != "" {
		if len(commit) > 12 {
			commit = commit[:12]
		}
		line += " (commit " + commit
		if modified {
			line += ", modified"
		}
		line += ")"
	}
	return fmt.Sprintf("%s %s %s", line, platform, goVersion)
}
