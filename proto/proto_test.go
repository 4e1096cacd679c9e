package proto_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	ocproto "github.com/oe-rt/oe-rt/proto"
)

// TestGeneratedCodeIsCurrent regenerates the Go code into a temporary
// directory and fails when it differs from what is committed: run
// `go generate ./proto` after editing a .proto file.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the protoc plugins")
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./internal/gen", "-src", ".", "-out", out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go run ./internal/gen: %s", b)
	for _, f := range []string{
		"openedge/function.pb.go", "openedge/function_grpc.pb.go",
		"baetyl/function.pb.go", "baetyl/function_grpc.pb.go",
	} {
		want, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err)
		got, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%s has drifted from its .proto: run `go generate ./proto`", f)
	}
}

func TestEmbeddedSources(t *testing.T) {
	for _, f := range []string{"openedge/function.proto", "baetyl/function.proto"} {
		b, err := fs.ReadFile(ocproto.Files, f)
		require.NoError(t, err)
		require.Contains(t, string(b), "service Function")
	}
}
