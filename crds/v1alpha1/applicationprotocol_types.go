package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ApplicationProtocolSpec names the codec that speaks a protocol.
type ApplicationProtocolSpec struct {
	// Codec is the name of a codec compiled into the proxy.
	// +required
	Codec Name `json:"codec"`

	// CodecConfig is passed to the codec as is; its shape is the codec's own.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	CodecConfig *runtime.RawExtension `json:"codecConfig,omitempty"`
}

// ApplicationProtocol registers a codec under a protocol name (the object's
// name), which ServiceEntry ports and Service appProtocols then refer to.
// dubbo, thrift and redis are built in and need none.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=metamesh
// +kubebuilder:printcolumn:name="Codec",type=string,JSONPath=`.spec.codec`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ApplicationProtocol struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired registration.
	// +required
	Spec ApplicationProtocolSpec `json:"spec"`

	// Status is what metamesh observed about this object.
	// +optional
	Status Status `json:"status,omitempty"`
}

// ApplicationProtocolList is a list of ApplicationProtocol.
// +kubebuilder:object:root=true
type ApplicationProtocolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ApplicationProtocol `json:"items"`
}
