package cli

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/oe-rt/oe-rt/client"
	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/internal/size"
)

// The flags that mean the same in every command that has them:
//
//	--format     the output's format (text, json, junit, raw: per command)
//	-o, --output the file to write the output to, instead of standard output
//	-v, --verbose log what the command does to standard error
//
// (-v is never --version: that is --version alone.)

// flagName is how a message names a flag: -c/--concurrency, or --grace.
func flagName(fs *pflag.FlagSet, name string) string {
	if fs == nil {
		return "--" + name
	}
	if f := fs.Lookup(name); f != nil && f.Shorthand != "" {
		return "-" + f.Shorthand + "/--" + name
	}
	return "--" + name
}

// positive checks a duration flag that must be above zero.
func positive(fs *pflag.FlagSet, name string, d time.Duration) error {
	if d <= 0 {
		return usageError("%s must be positive, got %s", flagName(fs, name), d)
	}
	return nil
}

// notNegative checks a duration flag that may be zero.
func notNegative(fs *pflag.FlagSet, name string, d time.Duration) error {
	if d < 0 {
		return usageError("%s must not be negative, got %s", flagName(fs, name), d)
	}
	return nil
}

// atLeast checks an integer flag against its least value.
func atLeast(fs *pflag.FlagSet, name string, n, least int) error {
	if n < least {
		return usageError("%s must be at least %d, got %d", flagName(fs, name), least, n)
	}
	return nil
}

// oneOf checks a flag whose value is one of a few words.
func oneOf(fs *pflag.FlagSet, name, value string, values ...string) error {
	for _, v := range values {
		if value == v {
			return nil
		}
	}
	return usageError("%s %q: want %s", flagName(fs, name), value, orList(values))
}

func orList(values []string) string {
	switch len(values) {
	case 1:
		return values[0]
	case 2:
		return values[0] + " or " + values[1]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// checkAddress checks a runtime's address as call and bench dial it:
// host:port with a port from 1 to 65535, an optional grpc://, grpcs:// or
// tcp:// scheme. from names where it came from (--address, $VAR).
func checkAddress(addr, from string) error {
	hp := convention.HostPort(addr)
	if i := strings.Index(hp, "://"); i >= 0 {
		return usageError("%s %q: unsupported scheme %q: want host:port, e.g. 127.0.0.1:50051", from, addr, hp[:i])
	}
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		msg := err.Error()
		if ae, ok := err.(*net.AddrError); ok {
			msg = ae.Err
		}
		return usageError("%s %q: %s: want host:port, e.g. 127.0.0.1:50051", from, addr, msg)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return usageError("%s %q: port %q: want a number from 1 to 65535", from, addr, port)
	}
	return nil
}

// tlsFlags are the client TLS flags, named as grpcurl names them.
type tlsFlags struct {
	enable   bool
	caCert   string
	cert     string
	key      string
	insecure bool
	server   string
}

func (t *tlsFlags) bind(fs *pflag.FlagSet) {
	fs.BoolVar(&t.enable, "tls", false, "use TLS, verifying the server against the system's roots (implied by the other TLS flags)")
	fs.StringVar(&t.caCert, "cacert", "", "verify the server's certificate against this CA `file` (PEM)")
	fs.StringVar(&t.cert, "cert", "", "client certificate `file` (PEM) for mutual TLS")
	fs.StringVar(&t.key, "key", "", "client private key `file` (PEM) for mutual TLS")
	fs.BoolVar(&t.insecure, "insecure", false, "use TLS but skip verification of the server's certificate")
	fs.StringVar(&t.server, "servername", "", "server `name` to verify the certificate against (default: the host of the address)")
}

func (t *tlsFlags) complete(c *cobra.Command) {
	_ = c.RegisterFlagCompletionFunc("servername", cobra.NoFileCompletions)
}

// config returns nil for plaintext. It loads the files the flags name, so
// that a missing or bad file is a usage error found before any dialling.
func (t *tlsFlags) config() (*client.TLS, error) {
	if !t.enable && t.caCert == "" && t.cert == "" && t.key == "" && !t.insecure && t.server == "" {
		return nil, nil
	}
	c := &client.TLS{CACert: t.caCert, Cert: t.cert, Key: t.key, Insecure: t.insecure, ServerName: t.server}
	if _, err := c.Config(); err != nil {
		return nil, usageError("%w", err)
	}
	return c, nil
}

// profiles are the convention's profiles, with what each sets.
var profiles = []cobra.Completion{
	cobra.CompletionWithDesc("openedge", "OPENEDGE_SERVICE_ADDRESS, openedge.Function"),
	cobra.CompletionWithDesc("baetyl", "BAETYL_SERVICE_INSTANCE_ADDRESS, baetyl.Function"),
}

// schemaFlags choose the wire schema: a profile's built-in proto, or the
// runtime's own .proto.
type schemaFlags struct {
	profile string
	proto   string
	service string
}

func (s *schemaFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&s.profile, "profile", "openedge", "convention `profile`: openedge or baetyl (proto package and environment variables)")
	fs.StringVar(&s.proto, "proto", "", "the runtime's own .proto `file`, parsed at run time, instead of the profile's")
	fs.StringVar(&s.service, "service", "", "the service in --proto to call, e.g. openedge.Function (default: the file's only service)")
}

func (s *schemaFlags) complete(c *cobra.Command) {
	_ = c.RegisterFlagCompletionFunc("profile", cobra.FixedCompletions(profiles, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("proto", cobra.FixedCompletions([]cobra.Completion{"proto"}, cobra.ShellCompDirectiveFilterFileExt))
	_ = c.RegisterFlagCompletionFunc("service", cobra.NoFileCompletions)
}

// checkProfile checks --profile alone, with convention.ParseProfile.
func (s *schemaFlags) checkProfile() error {
	_, err := s.parsedProfile()
	return err
}

// parsedProfile returns --profile as a convention.Profile, or a usage
// error that names the flag: --profile "x": want openedge or baetyl.
func (s *schemaFlags) parsedProfile() (convention.Profile, error) {
	p, err := convention.ParseProfile(s.profile)
	if err != nil {
		return "", usageError("--%w", err) // the error reads `profile "x": want …`
	}
	return p, nil
}

func (s *schemaFlags) schema(ctx context.Context) (*client.Schema, error) {
	profile, err := s.parsedProfile()
	if err != nil {
		return nil, err
	}
	if s.service != "" && s.proto == "" {
		return nil, usageError("--service needs --proto")
	}
	if s.proto != "" {
		sc, err := client.LoadProto(ctx, s.proto, s.service)
		if err != nil {
			return nil, usageError("--proto: %w", err)
		}
		return sc, nil
	}
	return client.ForProfile(profile), nil
}

// sizeValue is a pflag.Value for byte sizes such as 4m or 4194304, read by
// internal/size; zero and negative sizes are refused.
type sizeValue struct{ n *int64 }

func (v sizeValue) String() string {
	if v.n == nil || *v.n == 0 {
		return "0"
	}
	return size.Format(*v.n)
}

func (v sizeValue) Set(s string) error {
	n, err := size.Parse(s)
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

// outputFlag is -o/--output: the file to write the output to.
func bindOutput(fs *pflag.FlagSet, p *string, what string) {
	fs.StringVarP(p, "output", "o", "", "write "+what+" to `FILE` instead of standard output")
}
