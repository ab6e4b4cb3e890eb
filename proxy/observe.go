package proxy

import (
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/accesslog"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/tracing"
)

// observers are one request's sampling decisions: its access log when
// the request is sampled, its trace span when tracing is on, and when
// the proxy began handling it (durations of every outcome start there).
// They travel with the request, so no request reads another's.
type observers struct {
	log   *accesslog.Logger
	span  trace.Span
	start time.Time
}

// observe samples m for cfg's access log and starts its span, returning
// the trace headers to set on the forwarded request.
func (d *downstream) observe(cfg *config.Listener, m *protocols.Message, service string) (observers, []protocols.Header) {
	ob := observers{start: time.Now()}
	if cfg.AccessLog.Sample() {
		ob.log = cfg.AccessLog
	}
	var traceSet []protocols.Header
	if tr := d.srv.tracer.Load(); tr != nil {
		method, _ := m.Headers.Get("method")
		ob.span, traceSet = tr.Start(&m.Headers, d.codecName+" "+service+"/"+method)
		tracing.Describe(ob.span, d.codecName, service, method)
	}
	return ob, traceSet
}
