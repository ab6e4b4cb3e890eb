package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

// ApplicationProtocolSpec is Aeraki's ApplicationProtocol spec.
type ApplicationProtocolSpec struct {
	// Protocol is the protocol name ports refer to.
	// +optional
	Protocol string `json:"protocol,omitempty"`
	// Codec is the codec's extension name, such as
	// aeraki.meta_protocol.codec.dubbo.
	// +optional
	Codec string `json:"codec,omitempty"`
}

// ApplicationProtocol is Aeraki's ApplicationProtocol; unlike metamesh's
// it is namespaced, as in Aeraki.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=aeraki-io;metaprotocol-aeraki-io
type ApplicationProtocol struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is Aeraki's ApplicationProtocol spec.
	// +optional
	Spec ApplicationProtocolSpec `json:"spec,omitempty"`

	// Status is what metamesh observed about this object.
	// +optional
	Status metamesh.Status `json:"status,omitempty"`
}

// ApplicationProtocolList is a list of ApplicationProtocol.
// +kubebuilder:object:root=true
type ApplicationProtocolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ApplicationProtocol `json:"items"`
}
