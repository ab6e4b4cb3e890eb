package inject

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWants(t *testing.T) {
	enabled := map[string]string{NamespaceLabel: LabelEnabled}
	disabled := map[string]string{NamespaceLabel: "disabled"}
	pod := func(ann map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: ann}}
	}
	injected := pod(nil)
	sc := DefaultSidecar()
	sc.Inject(injected)
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		ns   map[string]string
		want bool
	}{
		{"labelled namespace", pod(nil), enabled, true},
		{"opted out", pod(map[string]string{PodAnnotation: "false"}), enabled, false},
		{"unlabelled namespace", pod(nil), nil, false},
		{"opted in", pod(map[string]string{PodAnnotation: "true"}), nil, true},
		{"opted in, namespace disabled", pod(map[string]string{PodAnnotation: "true"}), disabled, false},
		{"already injected", injected, enabled, false},
	} {
		if got := Wants(tc.pod, tc.ns); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestInjectCapturesInboundWhenAsked(t *testing.T) {
	sc := DefaultSidecar()
	sc.CaptureInbound, sc.XDSCAConfigMap = true, "ca"
	p := &corev1.Pod{}
	sc.Inject(p)
	if got := p.Spec.InitContainers[0].Args; len(got) != 5 || got[3] != "--capture-inbound" || got[4] != "--inbound-port=15006" {
		t.Errorf("init args %q", got)
	}
	args := p.Spec.Containers[0].Args
	if args[4] != "--capture-inbound=0.0.0.0:15006" || args[5] != "--xds-ca=/etc/metamesh/xds/ca.crt" {
		t.Errorf("sidecar args %q", args)
	}
	if args[len(args)-1] != "--identity-token=/var/run/secrets/metamesh/token" {
		t.Errorf("sidecar args %q: no identity token", args)
	}
	if len(p.Spec.Volumes) != 2 || p.Spec.Volumes[0].ConfigMap.Name != "ca" {
		t.Errorf("volumes %+v", p.Spec.Volumes)
	}
	// The token proving the sidecar's identity: its pod's, for the
	// control plane only.
	token := p.Spec.Volumes[1].Projected
	if token == nil || token.Sources[0].ServiceAccountToken.Audience != "metamesh" || token.Sources[0].ServiceAccountToken.Path != "token" {
		t.Errorf("token volume %+v", p.Spec.Volumes[1])
	}
	if m := p.Spec.Containers[0].VolumeMounts; len(m) != 2 || m[0].MountPath != "/var/run/secrets/metamesh" || !m[0].ReadOnly {
		t.Errorf("sidecar mounts %+v", m)
	}
	// Its sidecar terminates mutual TLS between proxies: its endpoints
	// are labelled so callers originate it.
	if p.Labels[TLSModeLabel] != "istio" {
		t.Errorf("labels %v: want %s=istio", p.Labels, TLSModeLabel)
	}
}
