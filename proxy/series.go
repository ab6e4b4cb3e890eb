package proxy

import (
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// upstreamStats counts the upstream pools' events.
func (s *Server) upstreamStats() upstream.Stats {
	m := s.metrics
	return upstream.Stats{
		ConnOpened:  func(addr string) { m.UpstreamCx.WithLabelValues(addr).Inc() },
		ConnClosed:  func(addr string) { m.UpstreamCx.WithLabelValues(addr).Dec() },
		UnknownResp: func(addr string) { m.UnknownReplies.WithLabelValues(addr).Inc() },
		BadFrame: func(_ string, codec protocols.Codec) {
			m.DecodeErrors.WithLabelValues(s.codecName(codec), "upstream").Inc()
		},
	}
}

// codecName is the name listeners in force give codec ("" when none
// uses it any more).
func (s *Server) codecName(codec protocols.Codec) string {
	if snap := s.snap.Load(); snap != nil {
		for _, l := range snap.Listeners {
			if l.Codec == codec {
				return l.CodecName
			}
		}
	}
	return ""
}
