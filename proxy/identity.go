package proxy

import (
	"crypto/tls"
	"net/url"
	"strings"
)

// identify learns, once, who the client is from the certificate its
// mutual-TLS connection presented and the listener verified: the SPIFFE
// ID spiffe://<trust domain>/ns/<namespace>/sa/<account> makes the
// principal "<trust domain>/ns/<namespace>/sa/<account>" (Istio's form)
// and the namespace <namespace> (docs/authorization.md). A plaintext
// connection, or a certificate without a SPIFFE ID, leaves both empty.
// Called by the read loop, after a frame was read (the handshake is done).
func (d *downstream) identify() {
	var tc *tls.Conn
	switch c := d.nc.(type) {
	case meshConn:
		// Verified by proxy/mtls, by hand (a SPIFFE ID, not a host name):
		// crypto/tls leaves VerifiedChains empty then, so the caller is the
		// leaf it presented (docs/authorization.md).
		d.identified = true
		if pc := c.ConnectionState().PeerCertificates; len(pc) > 0 {
			d.peer.Principal, d.peer.Namespace = spiffeIdentity(pc[0].URIs)
		}
		return
	case *tls.Conn:
		tc = c
	default:
		d.identified = true
		return
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete {
		return
	}
	d.identified = true
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return
	}
	d.peer.Principal, d.peer.Namespace = spiffeIdentity(st.VerifiedChains[0][0].URIs)
}

// spiffeIdentity returns the principal and namespace of the first SPIFFE
// ID among uris.
func spiffeIdentity(uris []*url.URL) (principal, namespace string) {
	for _, u := range uris {
		if u.Scheme != "spiffe" || u.Host == "" {
			continue
		}
		principal = u.Host + u.Path
		if parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/"); len(parts) >= 2 && parts[0] == "ns" {
			namespace = parts[1]
		}
		return principal, namespace
	}
	return "", ""
}
