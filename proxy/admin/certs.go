package admin

import (
	"net/http"
	"time"

	"github.com/metamesh/metamesh/proxy/certs"
)

// certsView is /certs: the proxy's workload identity.
type certsView struct {
	// ID is the SPIFFE ID of the certificate in force; empty (and the
	// rest absent) before the control plane issued one.
	ID        string     `json:"spiffe_id"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	Serial    string     `json:"serial,omitempty"`
}

func certsHandler(store *certs.Store) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		var v certsView
		if id := store.Current(); id != nil {
			leaf := id.Cert.Leaf
			v = certsView{ID: id.ID.String(), NotBefore: &leaf.NotBefore, NotAfter: &leaf.NotAfter, Serial: leaf.SerialNumber.Text(16)}
		}
		writeJSON(w, v)
	}
}
