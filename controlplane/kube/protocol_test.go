package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestPortProtocol(t *testing.T) {
	known := map[string]bool{"dubbo": true, "thrift": true, "redis": true, "my-rpc": true, "dubbo-v3": true}
	tests := []struct {
		name string
		port corev1.ServicePort
		want string
	}{
		{"appProtocol", corev1.ServicePort{Name: "api", AppProtocol: ptr.To("dubbo")}, "dubbo"},
		{"appProtocol ApplicationProtocol", corev1.ServicePort{Name: "api", AppProtocol: ptr.To("my-rpc")}, "my-rpc"},
		{"appProtocol wins over name", corev1.ServicePort{Name: "redis", AppProtocol: ptr.To("thrift")}, "thrift"},
		{"unknown appProtocol falls back to name", corev1.ServicePort{Name: "dubbo-api", AppProtocol: ptr.To("kubernetes.io/h2c")}, "dubbo"},
		{"unknown appProtocol, plain name", corev1.ServicePort{Name: "web", AppProtocol: ptr.To("http")}, ""},
		{"name alone", corev1.ServicePort{Name: "dubbo"}, "dubbo"},
		{"name prefix", corev1.ServicePort{Name: "dubbo-api"}, "dubbo"},
		{"Aeraki tcp- prefix", corev1.ServicePort{Name: "tcp-dubbo"}, "dubbo"},
		{"Aeraki tcp- prefix and suffix", corev1.ServicePort{Name: "tcp-thrift-hello"}, "thrift"},
		{"tcp-metaprotocol-", corev1.ServicePort{Name: "tcp-metaprotocol-my-rpc-server"}, "my-rpc"},
		{"tcp-metaprotocol- built-in", corev1.ServicePort{Name: "tcp-metaprotocol-dubbo-hello"}, "dubbo"},
		{"longest protocol name wins", corev1.ServicePort{Name: "dubbo-v3-api"}, "dubbo-v3"},
		{"prefix must end at a dash", corev1.ServicePort{Name: "dubbox"}, ""},
		{"tcp alone", corev1.ServicePort{Name: "tcp"}, ""},
		{"other name", corev1.ServicePort{Name: "http-web"}, ""},
		{"unnamed", corev1.ServicePort{}, ""},
		{"UDP never", corev1.ServicePort{Name: "dubbo", Protocol: corev1.ProtocolUDP}, ""},
		{"explicit TCP", corev1.ServicePort{Name: "redis", Protocol: corev1.ProtocolTCP}, "redis"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := portProtocol(tt.port, known); got != tt.want {
				t.Errorf("portProtocol(%+v) = %q, want %q", tt.port, got, tt.want)
			}
		})
	}
}
