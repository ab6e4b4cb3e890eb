package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/mtls"
	"github.com/metamesh/metamesh/proxy/wire"
)

// meshConn is a connection whose client passed mutual TLS between proxies
// (proxy/mtls verified its SPIFFE ID; crypto/tls leaves VerifiedChains
// empty then, see identify).
type meshConn struct{ *tls.Conn }

// SetIdentity makes store the proxy's workload identity, which mutual TLS
// between proxies presents and verifies peers against
// (docs/mesh-mode.md, "Mutual TLS between proxies"). Call it before the
// first Apply; without it the proxy has no identity, and accepts and
// dials mutual TLS connections' peers only in plaintext.
func (s *Server) SetIdentity(store *certs.Store) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.mesh = mtls.New(store, s.metrics.MTLSHandshakes)
	s.builder.Mesh = s.mesh
}

// sniff peeks at the first byte the client sends (wire.Peek) when cfg
// tells protocols apart by it: mutual TLS from plaintext (secure; mutual
// says whether cfg's mutual TLS applies to nc, as it does not to an
// outbound captured connection), Triple from Dubbo2 (cfg.Triple,
// accepted). peeked is false when cfg needs no peek or nc is not a TCP
// connection. ok is false when the client sent nothing or the proxy is
// draining: nc is closed.
func (s *Server) sniff(nc net.Conn, cfg *config.Listener, mutual bool) (first byte, peeked, ok bool) {
	tc, sniffable := nc.(*net.TCPConn)
	mutual = mutual && cfg.MTLS != config.MTLSOff
	if !sniffable || cfg.TLS != nil || (!mutual && cfg.Triple == nil) {
		return 0, false, true
	}
	// A client that has sent nothing yet is idle, not slow: it may wait
	// as long as any idle client (a pool's spare connection does).
	var idleAt time.Time
	if lim := s.limits.Load(); lim.IdleTimeout > 0 {
		idleAt = time.Now().Add(lim.IdleTimeout)
	}
	if !s.sniffStart(nc) {
		return 0, false, false
	}
	first, err := wire.Peek(tc, idleAt)
	s.sniffDone(nc)
	if err != nil {
		s.log.Debug("the client sent nothing", zap.String("listener", cfg.Name), zap.Stringer("client", nc.RemoteAddr()), zap.Error(err))
		_ = nc.Close()
		return 0, false, false
	}
	return first, true, true
}

// protocol is the codec a client connection is served with, and its name
// (the label of its metrics, the protocol of its access log lines).
type protocol struct {
	codec protocols.Codec
	name  string
}

// accepted is the protocol a connection of cfg's listener is served with:
// cfg's codec, or Triple when cfg has it and the client's first byte
// (sniff) opens the HTTP/2 client preface (docs/proxy-config.md, "Dubbo2
// and Triple on one port"). A Dubbo2 frame starts with 0xda, so one byte
// tells them apart; the Triple codec reads the rest of the preface.
func accepted(cfg *config.Listener, first byte, peeked bool) protocol {
	if cfg.Triple != nil && peeked && first == http2.ClientPreface[0] {
		return protocol{cfg.Triple, config.TripleCodec}
	}
	return protocol{cfg.Codec, cfg.CodecName}
}

// secure returns the connection cfg's codec reads from nc: nc itself in
// plaintext, or the server side of its TLS, the listener's own
// (listenerTls: the handshake runs in the first read) or mutual TLS
// between proxies (cfg.MTLS: handshake done here, so the caller's identity
// is known before its first request). In both mutual TLS modes the
// client's first byte (sniff; a connection that could not be peeked is
// taken for TLS) tells TLS from plaintext; STRICT refuses plaintext. A
// refused connection is closed, logged and counted, and ok is false.
func (s *Server) secure(nc net.Conn, cfg *config.Listener, first byte, peeked bool) (_ net.Conn, ok bool) {
	switch {
	case cfg.TLS != nil:
		return tls.Server(nc, cfg.TLS), true
	case cfg.MTLS == config.MTLSOff:
		return nc, true
	}
	lim := s.limits.Load()
	isTLS := !peeked || mtls.IsTLS(first)
	switch {
	case !isTLS && cfg.MTLS == config.MTLSStrict:
		s.mesh.Count(mtls.SideServer, mtls.ResultPlaintext)
		s.log.Info("mutual TLS: plaintext client refused (STRICT)", zap.String("listener", cfg.Name), zap.Stringer("client", nc.RemoteAddr()))
		_ = nc.Close()
		return nil, false
	case !isTLS:
		return nc, true
	}
	tc := tls.Server(nc, s.mesh.Server())
	ctx := context.Background()
	if lim.FrameTimeout > 0 {
		// The handshake is the client's first frame: bounded as one.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lim.FrameTimeout)
		defer cancel()
	}
	err := tc.HandshakeContext(ctx)
	s.mesh.Count(mtls.SideServer, mtls.Result(err))
	if err != nil {
		s.log.Info("mutual TLS: handshake refused", zap.String("listener", cfg.Name), zap.Stringer("client", nc.RemoteAddr()),
			zap.String("result", mtls.Result(err)), zap.Error(err))
		_ = nc.Close()
		return nil, false
	}
	return meshConn{tc}, true
}

// sniffStart records nc as waiting for its first byte, which Shutdown
// closes; false (nc closed) when the proxy is draining already.
func (s *Server) sniffStart(nc net.Conn) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.draining {
		_ = nc.Close()
		return false
	}
	s.sniffing[nc] = struct{}{}
	return true
}

func (s *Server) sniffDone(nc net.Conn) {
	s.connMu.Lock()
	delete(s.sniffing, nc)
	s.connMu.Unlock()
}
