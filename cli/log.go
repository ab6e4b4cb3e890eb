package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logFlags are the --log-level and --log-format every subcommand takes.
type logFlags struct {
	level, format string
	// atom is the built logger's level, changeable live (admin /logging).
	atom zap.AtomicLevel
}

func (f *logFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.level, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().StringVar(&f.format, "log-format", "console", "log format: json or console")
}

func (f *logFlags) build() (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(f.level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	var cfg zap.Config
	switch f.format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
	default:
		return nil, fmt.Errorf("--log-format: %q is not json or console", f.format)
	}
	f.atom = zap.NewAtomicLevelAt(lvl)
	cfg.Level = f.atom
	cfg.Sampling = nil
	return cfg.Build()
}
