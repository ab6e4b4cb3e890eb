// Package tracing gives the proxy OpenTelemetry spans: one span per
// request, a child of the W3C trace context the client sent (traceparent
// and tracestate read from the request's attributes: Dubbo attachments,
// THeader headers), written into the forwarded request the same way, and
// exported over OTLP/gRPC.
package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/metamesh/metamesh/protocols"
)

// Options configure tracing.
type Options struct {
	// Endpoint is the OTLP/gRPC collector address (host:port).
	Endpoint string
	// Insecure sends spans without TLS (a collector on loopback or a
	// sidecar).
	Insecure bool
	// SampleRatio is the share of new traces recorded (0 to 1); a request
	// whose client sent a sampled traceparent is always recorded.
	SampleRatio float64
	// ServiceName names the proxy in the spans' resource.
	ServiceName string
}

// Tracer starts request spans.
type Tracer struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// New starts an exporter to o.Endpoint. Shutdown flushes and stops it.
func New(ctx context.Context, o Options) (*Tracer, error) {
	if o.SampleRatio < 0 || o.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing: sample ratio %v is not in 0..1", o.SampleRatio)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(o.Endpoint)}
	if o.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	name := o.ServiceName
	if name == "" {
		name = "metamesh-proxy"
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(name))),
	)
	return &Tracer{provider: tp, tracer: tp.Tracer("github.com/metamesh/metamesh/proxy")}, nil
}

// Shutdown exports what is pending and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// ForceFlush exports what is pending.
func (t *Tracer) ForceFlush(ctx context.Context) error { return t.provider.ForceFlush(ctx) }

var w3c = propagation.TraceContext{}

// Start begins the span of one request named name, the child of the trace
// context in h. When the span is recorded it returns the attributes to set
// on the forwarded request so the upstream continues the trace (for codecs
// that can carry them; others forward the request unchanged).
func (t *Tracer) Start(h *protocols.Headers, name string) (trace.Span, []protocols.Header) {
	parent := w3c.Extract(context.Background(), headerCarrier{h})
	ctx, span := t.tracer.Start(parent, name, trace.WithSpanKind(trace.SpanKindServer))
	if !span.SpanContext().IsSampled() {
		return span, nil
	}
	var out mapCarrier
	w3c.Inject(ctx, &out)
	return span, out.kv
}

// headerCarrier reads a request's attributes as a TextMapCarrier.
type headerCarrier struct{ h *protocols.Headers }

func (c headerCarrier) Get(key string) string { v, _ := c.h.Get(key); return v }
func (c headerCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, c.h.Len())
	for _, kv := range c.h.All() {
		keys = append(keys, kv.Key)
	}
	return keys
}

// mapCarrier collects injected fields as attributes to set.
type mapCarrier struct{ kv []protocols.Header }

func (c *mapCarrier) Get(key string) string {
	for _, h := range c.kv {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}
func (c *mapCarrier) Set(key, value string) {
	c.kv = append(c.kv, protocols.Header{Key: key, Value: value})
}
func (c *mapCarrier) Keys() []string {
	keys := make([]string, len(c.kv))
	for i, h := range c.kv {
		keys[i] = h.Key
	}
	return keys
}

// End finishes a request's span with where it went and how it ended
// (status "ok" or anything else, an error).
func End(span trace.Span, route, cluster, upstream, status string) {
	span.SetAttributes(
		attribute.String("metamesh.route", route),
		attribute.String("metamesh.cluster", cluster),
		attribute.String("server.address", upstream),
		attribute.String("metamesh.status", status),
	)
	if status != "ok" && status != "oneway" {
		span.SetStatus(codes.Error, status)
	}
	span.End()
}

// Describe sets a request's own attributes on its span.
func Describe(span trace.Span, protocol, service, method string) {
	span.SetAttributes(
		attribute.String("rpc.system", protocol),
		attribute.String("rpc.service", service),
		attribute.String("rpc.method", method),
	)
}
