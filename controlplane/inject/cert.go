package inject

import (
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/metamesh/metamesh/controlplane/ca"
)

// A serving certificate lives a year and is reissued, in memory, a month
// before it expires.
const (
	servingLifetime = 365 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
)

// servingCert hands out the serving certificate, reissuing it when it
// nears its end.
type servingCert struct {
	ca    *ca.Authority
	hosts []string
	mu    sync.Mutex
	cert  *tls.Certificate
}

// get is a tls.Config.GetCertificate.
func (s *servingCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil || time.Until(s.cert.Leaf.NotAfter) < renewBefore {
		c, err := s.ca.IssueServing(s.hosts, servingLifetime)
		if err != nil {
			return nil, fmt.Errorf("inject: serving certificate: %w", err)
		}
		s.cert = c
	}
	return s.cert, nil
}
