package v1alpha1

// ClientTLSMode is how the proxy speaks to a host's endpoints.
// +kubebuilder:validation:Enum=DISABLE;SIMPLE;MUTUAL
type ClientTLSMode string

// The client TLS modes (Istio's names).
const (
	// ClientTLSDisable: plaintext.
	ClientTLSDisable ClientTLSMode = "DISABLE"
	// ClientTLSSimple: TLS, the server's certificate verified.
	ClientTLSSimple ClientTLSMode = "SIMPLE"
	// ClientTLSMutual: TLS with a client certificate of the proxy's.
	ClientTLSMutual ClientTLSMode = "MUTUAL"
)

// ClientTLS is how the proxy originates TLS to a host's endpoints (a TLS
// redis-server, a provider behind a TLS terminator): Istio's
// ClientTLSSettings fields, with files on the proxy's host.
type ClientTLS struct {
	// Mode: DISABLE, SIMPLE or MUTUAL.
	Mode ClientTLSMode `json:"mode"`
	// ClientCertificate is the PEM file of the proxy's certificate chain
	// (MUTUAL only, required there).
	// +optional
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// PrivateKey is the PEM file of its key (MUTUAL only, required there).
	// +optional
	PrivateKey string `json:"privateKey,omitempty"`
	// CACertificates is the PEM file of the CAs the server's certificate
	// must chain to; the system's roots when empty.
	// +optional
	CACertificates string `json:"caCertificates,omitempty"`
	// SNI is the server name sent and verified; the host's name when
	// empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	SNI string `json:"sni,omitempty"`
	// SubjectAltNames, when set, are the names the server's certificate
	// may carry instead of SNI (any one of them is enough).
	// +optional
	// +kubebuilder:validation:MaxItems=16
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// InsecureSkipVerify skips verifying the server's certificate: for
	// tests only.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// ServerTLSMode is how the proxy's listener accepts clients.
// +kubebuilder:validation:Enum=SIMPLE;MUTUAL
type ServerTLSMode string

// The listener TLS modes (Istio's names).
const (
	// ServerTLSSimple: TLS with the listener's certificate.
	ServerTLSSimple ServerTLSMode = "SIMPLE"
	// ServerTLSMutual: TLS, and clients must present a certificate that
	// chains to CACertificates.
	ServerTLSMutual ServerTLSMode = "MUTUAL"
)

// ListenerTLS is how the listener of a host's port terminates TLS from
// its clients (redis clients speaking TLS): Istio's ServerTLSSettings
// fields, with files on the proxy's host. Every host on the listener must
// say the same; the oldest DestinationPolicy's wins.
type ListenerTLS struct {
	// Mode: SIMPLE or MUTUAL.
	Mode ServerTLSMode `json:"mode"`
	// ServerCertificate is the PEM file of the listener's certificate
	// chain.
	ServerCertificate string `json:"serverCertificate"`
	// PrivateKey is the PEM file of its key.
	PrivateKey string `json:"privateKey"`
	// CACertificates is the PEM file of the CAs client certificates must
	// chain to (MUTUAL only, required there).
	// +optional
	CACertificates string `json:"caCertificates,omitempty"`
}
