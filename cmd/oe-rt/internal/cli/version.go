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

// versionLine is what oe-rt version and oe-rt --version print.
func versionLine() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("oe-rt %s %s/%s %s", v, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
