package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/spf13/pflag"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/serve"
)

// tlsFlags are the client TLS flags, named as grpcurl names them.
type tlsFlags struct {
	enable   bool
	caCert   string
	cert     string
	key      string
	insecure bool
	server   string
}

func (t *tlsFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&t.enable, "tls", false, "use TLS, verifying the server against the system's roots (implied by the other TLS flags)")
	fs.StringVar(&t.caCert, "cacert", "", "verify the server's certificate against this CA `file` (PEM)")
	fs.StringVar(&t.cert, "cert", "", "client certificate `file` (PEM) for mutual TLS")
	fs.StringVar(&t.key, "key", "", "client private key `file` (PEM) for mutual TLS")
	fs.BoolVar(&t.insecure, "insecure", false, "use TLS but skip verification of the server's certificate")
	fs.StringVar(&t.server, "servername", "", "server `name` to verify the certificate against (default: the host of the address)")
}

// config returns nil for plaintext.
func (t *tlsFlags) config() *client.TLS {
	if !t.enable && t.caCert == "" && t.cert == "" && t.key == "" && !t.insecure && t.server == "" {
		return nil
	}
	return &client.TLS{CACert: t.caCert, Cert: t.cert, Key: t.key, Insecure: t.insecure, ServerName: t.server}
}

// schemaFlags choose the wire schema: a profile's built-in proto, or the
// runtime's own .proto.
type schemaFlags struct {
	profile string
	proto   string
	service string
}

func (s *schemaFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&s.profile, "profile", "openedge", "convention `profile`: openedge or baetyl (proto package and environment variables)")
	fs.StringVar(&s.proto, "proto", "", "the runtime's own .proto `file`, parsed at run time, instead of the profile's")
	fs.StringVar(&s.service, "service", "", "the service in --proto to call, e.g. openedge.Function (default: the file's only service)")
}

func (s *schemaFlags) schema(ctx context.Context) (*client.Schema, error) {
	if s.service != "" && s.proto == "" {
		return nil, usageError("--service needs --proto")
	}
	if s.proto != "" {
		sc, err := client.LoadProto(ctx, s.proto, s.service)
		if err != nil {
			return nil, usageError("%w", err)
		}
		return sc, nil
	}
	switch s.profile {
	case "openedge":
		return client.OpenEdge(), nil
	case "baetyl":
		return client.Baetyl(), nil
	}
	return nil, usageError("--profile %q: want openedge or baetyl", s.profile)
}

// sizeValue is a pflag.Value for byte sizes such as 4m or 4194304.
type sizeValue struct{ n *int64 }

func (v sizeValue) String() string {
	if v.n == nil {
		return "0"
	}
	return fmt.Sprint(*v.n)
}

func (v sizeValue) Set(s string) error {
	n, err := serve.ParseSize(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("size %q must be positive", s)
	}
	*v.n = n
	return nil
}

func (sizeValue) Type() string { return "size" }

// codeName spells a gRPC code as the protocol does: NOT_FOUND, UNKNOWN.
func codeName(c codes.Code) string { return client.CodeName(c) }

// contextWithTimeout derives the command's context with a deadline.
func contextWithTimeout(cmd *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), d)
}
