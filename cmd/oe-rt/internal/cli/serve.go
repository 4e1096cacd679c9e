package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/oe-rt/oe-rt/serve"
)

type serveOptions struct {
	config         string
	explicitConfig bool // --config was given
	address        string
	logLevel       string
	logFormat      string
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
else server.address in the config. The config is --config, else, when it
exists, etc/baetyl/service.yml if a Baetyl master started serve (one of
$BAETYL_SERVICE_NAME, $BAETYL_SERVICE_INSTANCE_NAME,
$BAETYL_SERVICE_INSTANCE_ADDRESS is set), etc/openedge/service.yml if not.
Without functions in the config it serves the conformance fixtures echo,
context, none, fail and sleep. SIGTERM or SIGINT stops it gracefully (exit 0).`,
		Example: `  OPENEDGE_SERVICE_ADDRESS=127.0.0.1:50051 oe-rt serve
  oe-rt serve --address 127.0.0.1:50051
  oe-rt serve -c etc/openedge/service.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.explicitConfig = cmd.Flags().Changed("config")
			return runServe(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "configuration `file` (YAML) (default etc/baetyl/service.yml under a Baetyl master, else etc/openedge/service.yml, when it exists)")
	f.StringVar(&o.address, "address", "", "`host:port` to listen on (overrides the environment and the config)")
	f.StringVar(&o.logLevel, "log-level", "", "log `level`: debug, info, warn, error (overrides logger.level)")
	f.StringVar(&o.logFormat, "log-format", "", "log `format`: text or json (overrides logger.format)")
	return cmd
}

// runServe loads the configuration, checks what can be checked before
// starting, and runs the server. Start-up errors are returned, so that Main
// prints them on standard error, and logged too when the log goes to a
// file.
func runServe(ctx context.Context, e *env, o *serveOptions) error {
	cfg, source, err := loadServeConfig(o)
	if err != nil {
		return err
	}
	log, closeLog, err := newLogger(cfg.Logger, e.stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	fail := func(err error) error {
		if cfg.Logger.Path != "" {
			log.Error("runtime failed", "error", err.Error())
		}
		return err
	}
	// Configuration errors found before anything starts: exit 2. A
	// missing exec: program is named with the file, as the config's own
	// errors are.
	if err := serve.CheckFunctions(cfg); err != nil {
		if source.read {
			return fail(usageError("%s: %w", source.file, err))
		}
		return fail(usageError("%w", err))
	}
	if _, _, err := serve.ResolveAddress(o.address, cfg, nil); err != nil {
		return fail(usageError("%w", err))
	}
	log.Info("configuration", "file", source.file, "read", source.read, "why", source.why)
	if cfg.Logger.Rotation() {
		log.Info("logger.age.max, logger.size.max and logger.backup.max are accepted but not applied: serve appends to its log without rotating it")
	}
	err = serve.Run(ctx, serve.Options{
		Config: cfg, Address: o.address, Logger: log,
		// oe-rt serve starts no children but its exec: programs.
		AdoptOrphans:  true,
		ReleaseMemory: true,
	})
	if err != nil {
		return fail(&ExitError{Code: ExitFailure, Err: err})
	}
	return nil
}

// configSource says which configuration file serve read, and why.
type configSource struct {
	file string
	read bool
	why  string
}

// loadServeConfig reads the config file — the one named, else the default
// path, which may be absent — and applies flag overrides.
func loadServeConfig(o *serveOptions) (*serve.Config, configSource, error) {
	src := configSource{file: o.config, read: true, why: "--config"}
	if o.explicitConfig && strings.TrimSpace(o.config) == "" {
		return nil, src, usageError("--config is empty: name a configuration file, or leave the flag out to read %s (%s under a Baetyl master) when it exists",
			serve.OpenEdgeConfigPath, serve.BaetylConfigPath)
	}
	if !o.explicitConfig {
		src.file, src.why = serve.DefaultConfigPath(nil)
	}
	cfg, err := serve.LoadConfig(src.file)
	switch {
	case err == nil:
	case !o.explicitConfig && errors.Is(err, fs.ErrNotExist):
		cfg, src.read = serve.DefaultConfig(), false
	case errors.Is(err, fs.ErrNotExist):
		return nil, src, usageError("config file %s does not exist", o.config)
	default:
		return nil, src, usageError("%w", err)
	}
	if o.logLevel != "" {
		cfg.Logger.Level = o.logLevel
	}
	if o.logFormat != "" {
		cfg.Logger.Format = o.logFormat
	}
	return cfg, src, nil
}

// newLogger builds the runtime's logger from the logger block. With a
// path, it logs to that file, created with its directory. A file it cannot
// open is not an error: Baetyl's example configurations name
// var/log/baetyl/service.log, which a container's unprivileged user cannot
// create, and a runtime that exits for it never serves (its master restarts
// it in a loop). The log then goes to stderr, its first record saying why.
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
	format := strings.ToLower(c.Format)
	if format != "" && format != "text" && format != "json" {
		return nil, nil, usageError("log format %q: want text or json", c.Format)
	}
	w, closer := stderr, func() {}
	var unusable error
	if c.Path != "" {
		if err := os.MkdirAll(filepath.Dir(c.Path), 0o755); err != nil {
			unusable = fmt.Errorf("create the log directory (logger.path %s): %w", c.Path, err)
		} else if f, err := os.OpenFile(c.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			unusable = fmt.Errorf("open log file (logger.path %s): %w", c.Path, err)
		} else {
			w, closer = f, func() { f.Close() }
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	log := slog.New(slog.NewTextHandler(w, opts))
	if format == "json" {
		log = slog.New(slog.NewJSONHandler(w, opts))
	}
	if unusable != nil {
		log.Error("logging to stderr instead", "error", unusable.Error())
	}
	return log, closer, nil
}

// serveLoggerConfig is a logger block at the given level, for commands that
// log like serve does.
func serveLoggerConfig(level string) serve.LoggerConfig {
	return serve.LoggerConfig{Level: level, Format: "text"}
}
