package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// releaseTargets are the platforms a release is built for: where OpenEdge
// and Baetyl run, edge devices included (a Raspberry Pi 2 and later is
// linux/arm with GOARM=7; a 64-bit one, or a Jetson, linux/arm64). qemu is
// the qemu-user-static program that runs the build on another machine
// (empty: this machine's own architecture runs it directly).
var releaseTargets = []struct {
	goarch, goarm, qemu string
}{
	{"amd64", "", "qemu-x86_64-static"},
	{"arm64", "", "qemu-aarch64-static"},
	{"arm", "7", "qemu-arm-static"},
}

// TestReleaseBuilds builds oe-rt as a release is built (static,
// CGO_ENABLED=0, -trimpath, the version stamped with -ldflags) for every
// release target, and runs `oe-rt version` on each: natively for this
// machine's architecture, under qemu-user-static for the others. Without
// qemu the foreign builds are only built, and their run is skipped, unless
// OE_RT_TEST_REQUIRE_QEMU=1 (as CI sets it): then a missing qemu fails.
func TestReleaseBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds oe-rt for three platforms")
	}
	requireQEMU := os.Getenv("OE_RT_TEST_REQUIRE_QEMU") == "1"
	const version = "v0.0.0-release-test"
	dir := t.TempDir()
	for _, tg := range releaseTargets {
		platform := "linux/" + tg.goarch
		if tg.goarm != "" {
			platform += "v" + tg.goarm
		}
		t.Run(platform, func(t *testing.T) {
			bin := filepath.Join(dir, "oe-rt-"+strings.ReplaceAll(platform, "/", "-"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin,
				"-ldflags", "-s -w -X github.com/oe-rt/oe-rt/cmd/oe-rt/internal/cli.Version="+version, ".")
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.goarch, "GOARM="+tg.goarm)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build for %s: %v\n%s", platform, err, out)
			}
			var run *exec.Cmd
			if tg.goarch == runtime.GOARCH {
				run = exec.CommandContext(ctx, bin, "version")
			} else {
				q, err := exec.LookPath(tg.qemu)
				if err != nil {
					msg := tg.qemu + " is not installed (Debian: apt-get install qemu-user-static; scripts/install-deps.sh installs it)"
					if requireQEMU {
						t.Fatalf("%s, and OE_RT_TEST_REQUIRE_QEMU=1", msg)
					}
					t.Skipf("built; not run: %s", msg)
				}
				run = exec.CommandContext(ctx, q, bin, "version")
			}
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(run.Args, " "), err, out)
			}
			// Built from a checkout, go stamps the commit (unless
			// -buildvcs=false, as this project's machines set in GOFLAGS).
			want := regexp.MustCompile(`^oe-rt ` + regexp.QuoteMeta(version) + ` (\(commit [0-9a-f]+(, modified)?\) )?linux/` + tg.goarch + ` go`)
			if !want.MatchString(string(out)) {
				t.Errorf("oe-rt version on %s printed %q, want a line matching %s", platform, out, want)
			}
			t.Logf("%s: %s", platform, strings.TrimSpace(string(out)))
		})
	}
}
