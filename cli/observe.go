package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/admin"
	"github.com/metamesh/metamesh/proxy/tracing"
)

// observeFlags are the proxy's observability options: access logs (for
// listeners the command translates itself), tracing and pprof.
type observeFlags struct {
	accessLogFlags
	tracingEndpoint string
	tracingSample   float64
	tracingInsecure bool
	pprof           bool
}

// accessLogFlags set the access log of every listener a command
// translates (metamesh run for itself, metamesh controlplane for its
// proxies).
type accessLogFlags struct {
	accessLog, accessLogFormat, accessLogPath string
}

func (f *accessLogFlags) register(cmd *cobra.Command, whose string) {
	cmd.Flags().StringVar(&f.accessLog, "access-log", "off", "access log of every listener"+whose+": off, all, or sampled:PERCENT (e.g. sampled:1)")
	cmd.Flags().StringVar(&f.accessLogFormat, "access-log-format", "json", "access log format: json or text")
	cmd.Flags().StringVar(&f.accessLogPath, "access-log-path", "stdout", "access log destination"+whose+": stdout, stderr or a file")
}

func (f *observeFlags) register(cmd *cobra.Command, accessLogs bool) {
	if accessLogs {
		f.accessLogFlags.register(cmd, "")
	}
	cmd.Flags().StringVar(&f.tracingEndpoint, "tracing-endpoint", "", "OTLP/gRPC collector (host:port) to send request spans to; empty: no tracing")
	cmd.Flags().Float64Var(&f.tracingSample, "tracing-sample", 0.01, "share of new traces recorded (0 to 1); a client's sampled traceparent is always followed")
	cmd.Flags().BoolVar(&f.tracingInsecure, "tracing-insecure", false, "send spans to the collector without TLS")
	cmd.Flags().BoolVar(&f.pprof, "pprof", false, "serve net/http/pprof on the admin address under /debug/pprof/")
}

// accessLogConfig is the listeners' access log the flags ask for (nil:
// off).
func (f *accessLogFlags) accessLogConfig() (*xdsapi.AccessLog, error) {
	al := &xdsapi.AccessLog{Path: f.accessLogPath}
	switch f.accessLogFormat {
	case "json":
	case "text":
		al.Format = xdsapi.AccessLog_TEXT
	default:
		return nil, fmt.Errorf("--access-log-format: %q is not json or text", f.accessLogFormat)
	}
	switch mode, pct, _ := strings.Cut(f.accessLog, ":"); mode {
	case "off":
		return nil, nil
	case "all":
		al.Mode = xdsapi.AccessLog_ALL
	case "sampled":
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil || v < 0 || v > 100 {
			return nil, fmt.Errorf("--access-log: %q: want sampled:PERCENT with PERCENT in 0..100", f.accessLog)
		}
		al.Mode, al.SamplePercent = xdsapi.AccessLog_SAMPLED, v
	default:
		return nil, fmt.Errorf("--access-log: %q is not off, all or sampled:PERCENT", f.accessLog)
	}
	return al, nil
}

// startTracing turns tracing on for srv when asked; the returned func
// flushes and stops it.
func (f *observeFlags) startTracing(ctx context.Context, srv *proxy.Server) (func(context.Context) error, error) {
	if f.tracingEndpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	tr, err := tracing.New(ctx, tracing.Options{Endpoint: f.tracingEndpoint, Insecure: f.tracingInsecure, SampleRatio: f.tracingSample})
	if err != nil {
		return nil, fmt.Errorf("--tracing-endpoint: %w", err)
	}
	srv.SetTracer(tr)
	return tr.Shutdown, nil
}

// adminOptions are the admin endpoints for these flags and logs' level.
func (f *observeFlags) adminOptions(logs *logFlags) admin.Options {
	return admin.Options{Level: &logs.atom, Pprof: f.pprof}
}
