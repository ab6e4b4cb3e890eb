package metrics

import "github.com/prometheus/client_golang/prometheus"

// Capture holds the series of captured connections (mesh mode).
type Capture struct {
	// Outbound counts connections accepted by --capture-outbound, by
	// outcome: served (by a listener's codec), passthrough, or refused
	// (no original destination, or one that is the capture port itself).
	Outbound *prometheus.CounterVec
	// PassthroughCx counts passed-through connections by result: ok or
	// dial_error (the original destination refused or did not answer).
	PassthroughCx *prometheus.CounterVec
	// PassthroughBytes counts passed-through bytes by direction: upstream
	// (client to destination) and downstream.
	PassthroughBytes *prometheus.CounterVec
	// InboundCx counts connections accepted by --capture-inbound, by the
	// protocol of their port ("tcp" for a port no listener knows) and
	// result: served (through its codec, per request), forwarded (as
	// bytes), dial_error (the application refused) or refused.
	InboundCx *prometheus.CounterVec
	// InboundBytes counts the bytes forwarded to and from the application
	// by protocol and direction: upstream (to the application) and
	// downstream.
	InboundBytes *prometheus.CounterVec
}

func newCapture() *Capture {
	return &Capture{
		Outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_capture_outbound_connections_total",
			Help: "Connections captured outbound, by outcome: served, passthrough or refused.",
		}, []string{"outcome"}),
		PassthroughCx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_passthrough_connections_total",
			Help: "Captured connections passed through as TCP to their original destination, by result: ok or dial_error.",
		}, []string{"result"}),
		PassthroughBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_passthrough_bytes_total",
			Help: "Bytes of passed-through connections, by direction: upstream (to the destination) or downstream.",
		}, []string{"direction"}),
		InboundCx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_inbound_connections_total",
			Help: "Connections captured inbound, by protocol and result: served (per request, through the codec), forwarded (as bytes to the local application), dial_error or refused.",
		}, []string{"protocol", "result"}),
		InboundBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_inbound_bytes_total",
			Help: "Bytes of inbound captured connections forwarded as bytes, by protocol and direction: upstream (to the application) or downstream.",
		}, []string{"protocol", "direction"}),
	}
}

func (c *Capture) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.Outbound, c.PassthroughCx, c.PassthroughBytes, c.InboundCx, c.InboundBytes}
}
