package v1alpha1

// MTLSMode is how the proxies of a host's endpoints accept connections
// from other proxies (docs/mesh-mode.md#mutual-tls-between-proxies).
// +kubebuilder:validation:Enum=DISABLE;PERMISSIVE;STRICT
type MTLSMode string

// The mutual TLS modes (Istio's names).
const (
	// MTLSDisable: plaintext between proxies.
	MTLSDisable MTLSMode = "DISABLE"
	// MTLSPermissive: the inbound proxy accepts mutual TLS and plaintext,
	// so a mesh can be adopted one namespace at a time (the default).
	MTLSPermissive MTLSMode = "PERMISSIVE"
	// MTLSStrict: the inbound proxy refuses plaintext.
	MTLSStrict MTLSMode = "STRICT"
)

// MTLSModes lists the modes in the order of the docs.
var MTLSModes = []MTLSMode{MTLSDisable, MTLSPermissive, MTLSStrict}

// MTLS is mutual TLS between the proxies of a host: the proxies calling
// it originate it to the endpoints that run a sidecar, and the host's
// own sidecars terminate it.
type MTLS struct {
	// Mode: DISABLE, PERMISSIVE or STRICT (default: the control plane's
	// --mtls-mode, PERMISSIVE unless set).
	Mode MTLSMode `json:"mode"`
}
