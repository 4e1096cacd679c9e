package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/oe-rt/oe-rt/internal/shellquote"
	"github.com/oe-rt/oe-rt/scaffold"
)

// newOptions are oe-rt new's flags and arguments.
type newOptions struct {
	scaffold.Options
	list bool
}

func newNewCmd(e *env, runF func(context.Context, *newOptions) error) *cobra.Command {
	o := &newOptions{}
	cmd := &cobra.Command{
		Use:   "new NAME --lang go|python|node [--dir DIR] [--module PATH] [--force] [--dry-run]",
		Short: "Generate a new function runtime project",
		Long: `Generate a function runtime project in Go, Python or Node that follows the
convention and passes 'oe-rt conform --strict' as generated: the runtime, the
conformance fixtures, etc/openedge/service.yml, proto/function.proto, a
Makefile (build, run, test, conform, docker), a Dockerfile, a README and a
GitHub Actions workflow that runs the conformance suite.

NAME is lowercase letters, digits and dashes, starting with a letter. The
project goes to ./NAME unless --dir says otherwise; that directory must not
exist or must be empty, unless --force (generated files then replace files of
the same name; other files are kept). Nothing is left behind on failure.`,
		Example: `  oe-rt new myruntime --lang go
  oe-rt new myruntime --lang go --module github.com/me/myruntime
  oe-rt new myruntime --lang python --dir ~/src/myruntime
  oe-rt new myruntime --lang node --dry-run
  oe-rt new --list`,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runE(o, runF, func(ctx context.Context, o *newOptions) error { return runNew(ctx, e, o) }, nil),
	}
	f := cmd.Flags()
	f.StringVarP(&o.Lang, "lang", "l", "", "template `language`: go, python or node (see --list)")
	f.StringVar(&o.Dir, "dir", "", "`directory` to create (default ./NAME)")
	f.StringVar(&o.Module, "module", "", "Go module `path` of a Go project (default example.com/NAME)")
	f.BoolVar(&o.Force, "force", false, "write into a non-empty directory, replacing files of the same name")
	f.BoolVar(&o.DryRun, "dry-run", false, "list the files that would be written, and write nothing")
	f.BoolVar(&o.list, "list", false, "list the languages and the versions of their gRPC stacks")
	_ = cmd.RegisterFlagCompletionFunc("lang", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		langs, err := scaffold.Languages()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []cobra.Completion
		for _, l := range langs {
			out = append(out, cobra.CompletionWithDesc(l.Name, l.Description))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	_ = cmd.RegisterFlagCompletionFunc("dir", cobra.FixedCompletions(nil, cobra.ShellCompDirectiveFilterDirs))
	_ = cmd.RegisterFlagCompletionFunc("module", cobra.NoFileCompletions)
	return cmd
}

// check checks the arguments and the flags that need no template.
func (o *newOptions) check(cmd *cobra.Command, args []string) error {
	if o.list {
		if len(args) > 0 || cmd.Flags().NFlag() > 1 {
			return usageError("--list takes no NAME and no other flag")
		}
		return nil
	}
	switch {
	case len(args) == 0:
		return usageError("missing NAME: oe-rt new NAME --lang go|python|node")
	case len(args) > 1:
		return usageError("one NAME only, got %d arguments: %s", len(args), shellquote.Join(args))
	}
	o.Name = args[0]
	if o.Lang == "" {
		return usageError("missing --lang: choose go, python or node (oe-rt new --list shows them)")
	}
	return nil
}

func runNew(ctx context.Context, e *env, o *newOptions) error {
	if o.list {
		langs, err := scaffold.Languages()
		if err != nil {
			return err
		}
		return writeFailed("the list", printLanguages(e.stdout, langs))
	}
	o.OERTVersion = Version
	res, err := scaffold.Generate(ctx, o.Options)
	if err != nil {
		return err // exitCode: a scaffold.OptionError is a usage error, anything else a failure
	}
	if res.OtherLang != "" {
		verb := "wrote"
		if res.DryRun {
			verb = "would write"
		}
		fmt.Fprintf(e.stderr, "oe-rt: note: %s holds a %s project (%s): --force %s a %s project over it; the %s files stay beside the new ones\n",
			res.Dir, res.OtherLang, res.OtherMarker, verb, res.Lang.Name, res.OtherLang)
	}
	return writeFailed("the result", printResult(e.stdout, res))
}

func printLanguages(w io.Writer, langs []scaffold.Language) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANGUAGE\tGRPC STACK\tDESCRIPTION")
	for _, l := range langs {
		stack := make([]string, len(l.Stack))
		for i, p := range l.Stack {
			stack[i] = p.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, strings.Join(stack, ", "), l.Description)
	}
	return tw.Flush()
}

func printResult(w io.Writer, res *scaffold.Result) error {
	if res.DryRun {
		fmt.Fprintf(w, "Would create %s (%s runtime %s), %d files:\n", res.Dir, res.Lang.Name, res.Data.Name, len(res.Files))
	} else {
		fmt.Fprintf(w, "Created %s (%s runtime %s), %d files:\n", res.Dir, res.Lang.Name, res.Data.Name, len(res.Files))
	}
	for _, f := range res.Files {
		fmt.Fprintf(w, "  %s %7d  %s\n", f.Mode, f.Size, f.Path)
	}
	if res.DryRun {
		fmt.Fprintln(w, "\nNothing was written (--dry-run).")
		return nil
	}
	fmt.Fprintln(w, "\nNext steps:")
	fmt.Fprintf(w, "  cd %s\n", shellquote.Quote(filepath.Clean(res.Dir)))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range res.NextSteps {
		fmt.Fprintf(tw, "  %s\t# %s\n", s.Run, s.Doc)
	}
	return tw.Flush()
}
