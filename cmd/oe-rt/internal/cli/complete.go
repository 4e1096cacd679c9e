package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/oe-rt/oe-rt/conformance"
)

// The output formats, with what each is for.
var (
	formatText  = cobra.CompletionWithDesc("text", "for people")
	formatJSON  = cobra.CompletionWithDesc("json", "for programs")
	formatJUnit = cobra.CompletionWithDesc("junit", "JUnit XML, for CI")
	formatRaw   = cobra.CompletionWithDesc("raw", "the response payload as it is")
)

// completeFormats offers a command's --format values.
func completeFormats(c *cobra.Command, formats ...cobra.Completion) {
	_ = c.RegisterFlagCompletionFunc("format", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// completeList completes a comma-separated list flag (--run a,b,c): the
// word after the last comma, from values, keeping what comes before it.
func completeList(values func() []cobra.Completion) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		done, last := "", toComplete
		if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
			done, last = toComplete[:i+1], toComplete[i+1:]
		}
		var out []cobra.Completion
		for _, v := range values() {
			if strings.HasPrefix(v, last) {
				out = append(out, done+v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// checkSelectors are the values of --run and --skip: every check ID, with
// its description, and every prefix.* group.
func checkSelectors() []cobra.Completion {
	var out []cobra.Completion
	seen := map[string]bool{}
	for _, c := range conformance.Catalog() {
		if group, _, ok := strings.Cut(c.ID, "."); ok && !seen[group] {
			seen[group] = true
			out = append(out, cobra.CompletionWithDesc(group+".*", "every "+group+" check"))
		}
		out = append(out, cobra.CompletionWithDesc(c.ID, string(c.Level)+": "+c.Describe(nil)))
	}
	return out
}

// completeServe adds value completion to serve's flags (serve.go binds
// them; the values are the ones serve's logger takes).
func completeServe(root *cobra.Command) {
	c, _, err := root.Find([]string{"serve"})
	if err != nil || c == root {
		return
	}
	_ = c.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]cobra.Completion{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]cobra.Completion{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("address", cobra.NoFileCompletions)
	_ = c.RegisterFlagCompletionFunc("config", cobra.FixedCompletions([]cobra.Completion{"yml", "yaml"}, cobra.ShellCompDirectiveFilterFileExt))
}
