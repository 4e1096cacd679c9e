package cli

// Shown output is real: every output shown in README.md and docs/ is
// produced by running its command here and compared with what the page
// shows.
//
// An output is shown in one of two ways:
//
//   - a transcript: a block whose lines start with "$ COMMAND", each
//     followed by its output (an error, "oe-rt: …", is compared exactly
//     with standard error);
//   - a block right after a line <!-- output of: COMMAND --> (or
//     <!-- stderr of: COMMAND --> for what it writes to standard error):
//     the block is COMMAND's standard output.
//
// Both run as the examples of docs_test.go run (stand-ins for ./myruntime,
// a free port for 127.0.0.1:50051). The comparison masks what changes from
// run to run: numbers (times, sizes, counts, ports, PIDs, versions),
// durations, UUIDs, hex bytes, /tmp paths, the bars of a histogram, and
// runs of spaces (columns shift when numbers do). A line that is only "…"
// stands for any number of lines, and "…" within a line for any text: a
// page may show an excerpt, and a check added to the catalog does not
// make it stale.
//
// To regenerate the pages after changing what a command prints:
//
//	go test ./cmd/oe-rt/internal/cli -run 'TestDocsExamplesRun' -update
//
// rewrites every shown output from this run (the lines of an excerpt that
// matched in place; an output that no longer matches its excerpt whole),
// with the test's temporary paths and ports turned back into the page's.
// Review the diff: the figures are this machine's.
//
// A block that shows output no command here can produce is listed in
// docsIllustrations, with the reason and what tests it instead.

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oe-rt/oe-rt/conformance"
)

var updateDocs = flag.Bool("update", false, "rewrite the outputs shown in README.md and docs/ from this run (see docs_output_test.go)")

// docsIllustrations are the blocks that show output no command of this
// test can produce, keyed "FILE: first line of the block", each with the
// reason and what tests it instead. Every entry must match a block.
var docsIllustrations = map[string]string{
	"docs/conformance.md: PASS  start.time  SHOULD  accepted its first connection 3.94s and answered its first call 3.95s after exec, over the 1s line, but the reference started in 23ms on this machine at the same moment; the runtime's main thread waited 3.71s for a CPU: 3.71s of it is the machine's, so this is the machine, not the runtime (231ms without it)": "two start.time lines of a loaded machine; conformance's calibration tests (TestCalibrationLoadedCPUBoundStartIsTheMachine, TestCalibrationSleepingStartIsTheRuntime) produce both wordings",
	"docs/conformance.md: FAIL  fail.status              MUST       9ms  the runtime exited (exit status 3) while answering the call to the fail fixture":                                                                                                                                                                                                                 "needs a runtime that crashes in its fail function; conformance's TestVerdictCrashInFail runs one and checks these lines",
	"docs/conformance.md: {": "a field reference assembled from several runs (failing, enforced limits, master API requests); printer.TestJSON and the conformance tests check the fields, TestDocsCatalogVersion its catalog_version",
	`docs/conformance.md: "baseline": { "file": "conform-baseline.json", "started": "2026-11-20T09:00:00Z", "oe_rt_version": "v0.5.0",`:                                                                                                                                                              "a fragment of the field reference above; the baseline tests check its fields, TestDocsCatalogVersion its catalog_version",
	"docs/conformance.md: CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build -trimpath -o oe-rt-linux-armv7 ./cmd/oe-rt":                                                                                                                                                                           "commands to run on an ARM device over ssh; cmd/oe-rt's TestReleaseBuilds builds the same binaries and runs them under qemu-user-static",
	"docs/conformance.md: FAIL  life.leaks   MUST    over 250 calls on instance #2: 1 fd per call: the 1,024 fd limit is reached after about 1,010 calls (fds 61 → 311 over 250 calls)":                                                                                                              "needs a runtime that leaks a file per call and fails after 300; conformance's TestLongLife runs one and checks both wordings",
	`docs/conformance.md: FAIL  call.fields  MUST  1ms  call #9 to none on instance #1 (main), made by none.empty 520ms into the run: the response must be the request with only Payload replaced: FunctionName = "", want "none" (4 calls of the run broke this check's rules; the first is shown)`: "needs a runtime that answers none with a fresh message; conformance's TestOraclesJudgeEveryAnswer runs one and checks these lines",
	"docs/architecture.md: cmd/oe-rt (main)                        the binary: hands over to the command tree":                                                                                                                                                                                       "a drawing of the layers, not output",
	"docs/architecture.md: Config ──► Run ──► runner ──► instances ──► call record ──► oracles ──► results ──► Report ──► printers":                                                                                                                                                                  "a drawing of a conform run's data flow, not output",
	"docs/new-python.md: myruntime/":                                                             "a drawing of the generated tree with comments; scaffold/testdata/python.txtar (TestGolden) holds the real tree",
	"docs/container.md: make docker IMAGE=myrt":                                                  "docker commands run as a master runs an instance; they need a Docker engine and a generated project: scaffold/e2e's TestTemplateImages runs the same steps",
	`docs/container.md: eval "$(./scripts/docker-engine.sh start)"`:                              "starts a Docker engine (as root, installing docker.io) and runs the container tests; scripts/test.sh runs them",
	"docs/serve.md: CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o dist/oe-rt ./cmd/oe-rt": "builds serve's image on a Docker engine; scaffold/e2e's TestServeImage builds and runs it",
	`docs/serve.md: level=ERROR msg="cannot accept connections: retrying; idle connections are closed after server.idle.timeout" error="accept tcp 127.0.0.1:50051: accept4: too many open files" open_file_limit=64 open_connections=57`: "needs the open file limit exhausted; serve's TestIdleConnectionsUnderLowFileLimit produces the line",
}

// outputMarker is the line before a block that names its command.
var outputMarker = regexp.MustCompile(`^<!-- (output|stderr) of: (.+?) -->$`)

func outputExample(file string, line int, marker string, block []string) docExample {
	m := outputMarker.FindStringSubmatch(marker)
	return docExample{
		source: fmt.Sprintf("%s:%d", file, line), key: file + ": " + m[2],
		outputOf: m[2], stderrOf: m[1] == "stderr", block: block,
	}
}

func firstLine(block []string) string {
	for _, l := range block {
		if strings.TrimSpace(l) != "" {
			return l
		}
	}
	return ""
}

// The masks, applied to the page's lines and the command's alike.
var (
	maskTmp      = regexp.MustCompile(`/tmp/[^\s'"():,]*`)
	maskUUID     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	maskHex      = regexp.MustCompile(`0x[0-9a-f]+`)
	maskDuration = regexp.MustCompile(`\d+(\.\d+)?(ns|µs|us|ms|s|m|h)\b`)
	maskNumber   = regexp.MustCompile(`\d+(\.\d+)?`)
	maskBars     = regexp.MustCompile(`█+`)
)

func maskLine(s string) string {
	s = maskTmp.ReplaceAllString(s, "/tmp/T")
	s = maskUUID.ReplaceAllString(s, "U")
	s = maskHex.ReplaceAllString(s, "X")
	s = maskDuration.ReplaceAllString(s, "D")
	s = maskNumber.ReplaceAllString(s, "N")
	s = maskBars.ReplaceAllString(s, "█")
	return strings.Join(strings.Fields(s), " ")
}

// trimBlank drops blank lines at both ends.
func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// matchOutput matches the lines a page shows against the lines a command
// wrote, masked. It returns, for each shown line, the index of the actual
// line it matched (-1 for a "…" line), or nil when they do not match.
func matchOutput(shown, actual []string) []int {
	type pat struct {
		gap bool
		re  *regexp.Regexp
	}
	pats := make([]pat, len(shown))
	for i, l := range shown {
		if strings.TrimSpace(l) == "…" {
			pats[i].gap = true
			continue
		}
		parts := strings.Split(maskLine(l), "…")
		for j := range parts {
			parts[j] = regexp.QuoteMeta(strings.TrimSpace(parts[j]))
		}
		pats[i].re = regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
	}
	masked := make([]string, len(actual))
	for i, l := range actual {
		masked[i] = maskLine(l)
	}
	memo := map[[2]int]bool{}
	var at []int
	var match func(i, j int) bool
	match = func(i, j int) bool {
		if i == len(pats) {
			return j == len(masked)
		}
		k := [2]int{i, j}
		if done, ok := memo[k]; ok && !done {
			return false
		}
		ok := false
		if pats[i].gap {
			for n := j; n <= len(masked) && !ok; n++ {
				at[i] = -1
				ok = match(i+1, n)
			}
		} else if j < len(masked) && pats[i].re.MatchString(masked[j]) {
			at[i] = j
			ok = match(i+1, j+1)
		}
		memo[k] = ok
		return ok
	}
	at = make([]int, len(pats))
	if !match(0, 0) {
		return nil
	}
	return at
}

// checkOutput compares what a page shows with what the command wrote, or
// with -update returns the lines to show instead.
func checkOutput(t *testing.T, what string, shown []string, actual string) []string {
	t.Helper()
	shown = trimBlank(shown)
	act := trimBlank(strings.Split(strings.TrimRight(actual, "\n"), "\n"))
	at := matchOutput(shown, act)
	if !*updateDocs {
		if at == nil {
			t.Errorf("%s: the page shows what the command no longer writes (masked: numbers, times, paths; run with -update to rewrite the page):\n--- shown\n%s\n--- written\n%s", what, strings.Join(shown, "\n"), strings.Join(act, "\n"))
		}
		return nil
	}
	if at == nil {
		return act // the whole output: trim it to an excerpt by hand
	}
	out := make([]string, len(shown))
	for i, l := range shown {
		if at[i] < 0 || strings.Contains(l, "…") {
			out[i] = l
		} else {
			out[i] = act[at[i]]
		}
	}
	return out
}

// replaceBlock rewrites a fenced block of a page, found by its content.
func replaceBlock(t *testing.T, path string, old, new []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	from := "\n" + strings.Join(old, "\n") + "\n```"
	to := "\n" + strings.Join(new, "\n") + "\n```"
	if !strings.Contains(string(b), from) {
		t.Errorf("%s: -update: the block to rewrite is not there any more", path)
		return
	}
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(b), from, to, 1)), 0o644))
}

// TestDocsCatalogVersion: the catalog version the pages' JSON shows is
// the catalog's (a helper that bumps it updates the page).
func TestDocsCatalogVersion(t *testing.T) {
	b, err := os.ReadFile(repoRoot + "/docs/conformance.md")
	require.NoError(t, err)
	ms := regexp.MustCompile(`"catalog_version": (\d+)`).FindAllStringSubmatch(string(b), -1)
	require.NotEmpty(t, ms)
	for _, m := range ms {
		assert.Equal(t, fmt.Sprint(conformance.CatalogVersion), m[1], "docs/conformance.md shows catalog_version %s", m[1])
	}
}

func TestDocsOutputMatching(t *testing.T) {
	shown := []string{"PASS  start.listen   MUST  12ms  on 127.0.0.1:33447", "…", "PASSED: 27 passed in 1.12s", "peak: … threads"}
	actual := []string{"PASS  start.listen             MUST       3ms  on 127.0.0.1:40001", "PASS  x", "PASS  y", "PASSED: 28 passed in 980ms", "peak: 9 MiB, 8 threads"}
	assert.Equal(t, []int{0, -1, 3, 4}, matchOutput(shown, actual))
	assert.Nil(t, matchOutput(shown, actual[:4]), "a shown line with nothing to match")
	assert.Nil(t, matchOutput([]string{"FAILED: 1 passed"}, []string{"PASSED: 1 passed"}))
	assert.Equal(t, []int{0}, matchOutput([]string{"x 458a5fdd-c9da-4ef0-a2e5-f4f1e2dbdb62 /tmp/a-1/b 0x4d"}, []string{"x 00000000-c9da-4ef0-a2e5-f4f1e2dbdb62 /tmp/zz 0x6d"}))
}
