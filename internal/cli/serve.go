package cli

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oe-rt/oe-rt/internal/convention"
	"github.com/oe-rt/oe-rt/serve"
)

func init() { register(newServeCmd) }

type serveOptions struct {
	config    string
	address   string
	logLevel  string
	logFormat string
}

func newServeCmd(e *env) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the reference function runtime",
		Long: `Run oe-rt's reference function runtime: a gRPC server for openedge.Function
and baetyl.Function that follows the runtime convention to the letter.

The address comes from --address, else $BAETYL_SERVICE_INSTANCE_ADDRESS,
$OPENEDGE_SERVICE_INSTANCE_ADDRESS, $OPENEDGE_SERVICE_ADDRESS (in that order),
else server.address in the config. The config is --config, else
etc/openedge/service.yml when it exists. Without functions in the config it
serves the conformance fixtures echo, context, none, fail and sleep.
SIGTERM or SIGINT stops it gracefully (exit 0).`,
		Example: `  OPENEDGE_SERVICE_ADDRESS=127.0.0.1:50051 oe-rt serve
  oe-rt serve --address 127.0.0.1:50051
  oe-rt serve -c etc/openedge/service.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(o, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			log, closeLog, err := newLogger(cfg.Logger, e.stderr)
			if err != nil {
				return err
			}
			defer closeLog()
			// No address anywhere is a usage error (exit 2), found before
			// anything starts.
			if _, _, err := serve.ResolveAddress(o.address, cfg, nil); err != nil {
				return usageError("%w", err)
			}
			err = serve.Run(cmd.Context(), serve.Options{
				Config: cfg, Address: o.address, Logger: log,
				// oe-rt serve starts no children but its exec: programs.
				AdoptOrphans:  true,
				ReleaseMemory: true,
			})
			if err != nil {
				return &ExitError{Code: ExitFailure, Err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", convention.DefaultConfigPath, "configuration `file` (YAML)")
	f.StringVar(&o.address, "address", "", "`host:port` to listen on (overrides the environment and the config)")
	f.StringVar(&o.logLevel, "log-level", "", "log `level`: debug, info, warn, error (overrides logger.level)")
	f.StringVar(&o.logFormat, "log-format", "", "log `format`: text or json (overrides logger.format)")
	return cmd
}

// loadServeConfig reads the config file, which may be absent when it is the
// default path, and applies flag overrides.
func loadServeConfig(o *serveOptions, explicit bool) (*serve.Config, error) {
	cfg, err := serve.LoadConfig(o.config)
	switch {
	case err == nil:
	case !explicit && errors.Is(err, fs.ErrNotExist):
		cfg = serve.DefaultConfig()
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageError("config file %s does not exist", o.config)
	default:
		return nil, usageError("%w", err)
	}
	if o.logLevel != "" {
		cfg.Logger.Level = o.logLevel
	}
	if o.logFormat != "" {
		cfg.Logger.Format = o.logFormat
	}
	return cfg, nil
}

// newLogger builds the runtime's logger from the logger block.
func newLogger(c serve.LoggerConfig, stderr io.Writer) (*slog.Logger, func(), error) {
	var level slog.Level
	switch strings.ToLower(c.Level) {
	case "debug":
		level = slog.LevelDebug
	case "", "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, nil, usageError("log level %q: want debug, info, warn or error", c.Level)
	}
	w, closer := stderr, func() {}
	if c.Path != "" {
		f, err := os.OpenFile(c.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, nil, usageError("open log file (logger.path): %w", err)
		}
		w, closer = f, func() { f.Close() }
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), closer, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), closer, nil
	}
	closer()
	return nil, nil, usageError("log format %q: want text or json", c.Format)
}

// serveLoggerConfig is a logger block at the given level, for commands that
// log like serve does.
func serveLoggerConfig(level string) serve.LoggerConfig {
	return serve.LoggerConfig{Level: level, Format: "text"}
}
