// Package inject is the control plane's sidecar injector: a mutating
// admission webhook that adds the capture init container (`metamesh
// iptables`) and the proxy sidecar to pods that ask for them, served with a
// certificate the control plane issues itself from a CA kept in a Secret,
// whose certificate it writes into the MutatingWebhookConfiguration's
// caBundle.
package inject

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// The label and annotation that ask for injection.
const (
	// NamespaceLabel set to LabelEnabled on a namespace injects its pods.
	NamespaceLabel = "metamesh.io/inject"
	// LabelEnabled is NamespaceLabel's value that turns injection on.
	LabelEnabled = "enabled"
	// PodAnnotation "false" keeps a pod of an injected namespace out;
	// "true" brings in a pod of a namespace without NamespaceLabel.
	PodAnnotation = "metamesh.io/inject"
	// StatusAnnotation marks an injected pod, so a second pass (webhook
	// reinvocation) leaves it alone.
	StatusAnnotation = "metamesh.io/injected"
	// TLSModeLabel "istio" (Istio's label) marks a pod whose sidecar
	// captures inbound connections, so terminates mutual TLS between
	// proxies; its endpoints carry it, and the translator originates mutual
	// TLS to them.
	TLSModeLabel = "security.istio.io/tlsMode"
)

// Names of what is added.
const (
	InitName    = "metamesh-init"
	SidecarName = "metamesh-proxy"
	caVolume    = "metamesh-xds-ca"
	caMountPath = "/etc/metamesh/xds"
	// The pod's service-account token for the control plane (audience
	// metamesh), which proves the sidecar's identity for its workload
	// certificate (docs/identity.md); kubelet rotates it.
	tokenVolume    = "metamesh-token"
	tokenMountPath = "/var/run/secrets/metamesh"
	tokenAudience  = "metamesh"
	tokenSeconds   = 3600
)

// Sidecar says what to inject.
type Sidecar struct {
	// ProxyImage runs the sidecar; InitImage the init container, and must
	// hold the iptables tools (the Dockerfile's init target).
	ProxyImage, InitImage string
	// XDSAddress is the control plane's ADS address, host:port.
	XDSAddress string
	// XDSCAConfigMap names a ConfigMap (key ca.crt) in the pod's namespace
	// with the CA the control plane's certificate chains to; empty
	// connects to the control plane in plaintext.
	XDSCAConfigMap string
	// ProxyUID is the sidecar's user, whose connections are not captured.
	ProxyUID int64
	// OutboundPort and InboundPort are the capture ports.
	OutboundPort, InboundPort int32
	// CaptureInbound also captures inbound connections.
	CaptureInbound bool
	// CPURequest and MemoryRequest are the sidecar's resource requests.
	CPURequest, MemoryRequest resource.Quantity
}

// DefaultSidecar is the Sidecar of the controlplane's --inject-* defaults,
// without images and address.
func DefaultSidecar() Sidecar {
	return Sidecar{ProxyUID: 1337, OutboundPort: 15001, InboundPort: 15006,
		CPURequest: resource.MustParse("100m"), MemoryRequest: resource.MustParse("64Mi")}
}

// Wants reports whether pod, in a namespace with nsLabels, gets a sidecar:
// in a namespace labelled enabled unless the pod says "false", elsewhere
// only if it says "true" and the namespace does not carry the label at
// all (a namespace labelled disabled is left alone).
func Wants(pod *corev1.Pod, nsLabels map[string]string) bool {
	if _, done := pod.Annotations[StatusAnnotation]; done || hasContainer(pod, SidecarName) {
		return false
	}
	ann := strings.ToLower(pod.Annotations[PodAnnotation])
	label, labelled := nsLabels[NamespaceLabel]
	if labelled {
		return label == LabelEnabled && ann != "false"
	}
	return ann == "true"
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.Name == name {
			return true
		}
	}
	return false
}

// Inject adds the init container (first, so the rules are in place before
// any other container runs) and the sidecar to pod.
func (s *Sidecar) Inject(pod *corev1.Pod) {
	pod.Spec.InitContainers = append([]corev1.Container{s.initContainer()}, pod.Spec.InitContainers...)
	pod.Spec.Containers = append(pod.Spec.Containers, s.proxyContainer())
	if s.XDSCAConfigMap != "" {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: s.XDSCAConfigMap}}}})
	}
	// A token volume needs the pod's service account named, which
	// Kubernetes' ServiceAccount admission does, usually before webhooks
	// run; the same default where it has not.
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: tokenVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: tokenAudience, ExpirationSeconds: ptr.To[int64](tokenSeconds), Path: "token"}}}}}})
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[StatusAnnotation] = "true"
	if s.CaptureInbound {
		// Its sidecar terminates mutual TLS between proxies: the
		// proxies calling it originate it (docs/mesh-mode.md).
		if pod.Labels == nil {
			pod.Labels = map[string]string{}
		}
		pod.Labels[TLSModeLabel] = "istio"
	}
}

// initContainer runs `metamesh iptables` as root with NET_ADMIN and
// NET_RAW (legacy iptables opens a raw socket) and nothing else: root,
// because capabilities a non-root user is given do not survive exec.
func (s *Sidecar) initContainer() corev1.Container {
	args := []string{"iptables",
		"--proxy-uid=" + strconv.FormatInt(s.ProxyUID, 10),
		"--outbound-port=" + strconv.Itoa(int(s.OutboundPort)),
	}
	if s.CaptureInbound {
		args = append(args, "--capture-inbound", "--inbound-port="+strconv.Itoa(int(s.InboundPort)))
	}
	return corev1.Container{
		Name:  InitName,
		Image: s.InitImage,
		Args:  args,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To[int64](0),
			RunAsNonRoot:             ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
	}
}

// proxyContainer is the sidecar: non-root as ProxyUID, no capabilities.
// Its node ID is <pod>.<namespace>, from the downward API (a Deployment's
// pod has no name yet when it is admitted).
func (s *Sidecar) proxyContainer() corev1.Container {
	args := []string{"proxy",
		"--xds=" + s.XDSAddress,
		"--node=$(POD_NAME).$(POD_NAMESPACE)",
		fmt.Sprintf("--capture-outbound=127.0.0.1:%d", s.OutboundPort),
	}
	if s.CaptureInbound {
		args = append(args, fmt.Sprintf("--capture-inbound=0.0.0.0:%d", s.InboundPort))
	}
	mounts := []corev1.VolumeMount{{Name: tokenVolume, MountPath: tokenMountPath, ReadOnly: true}}
	if s.XDSCAConfigMap != "" {
		args = append(args, "--xds-ca="+caMountPath+"/ca.crt")
		mounts = append(mounts, corev1.VolumeMount{Name: caVolume, MountPath: caMountPath, ReadOnly: true})
	} else {
		args = append(args, "--insecure")
	}
	args = append(args, "--identity-token="+tokenMountPath+"/token")
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	return corev1.Container{
		Name:  SidecarName,
		Image: s.ProxyImage,
		Args:  args,
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
		},
		VolumeMounts: mounts,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: s.CPURequest, corev1.ResourceMemory: s.MemoryRequest}},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(s.ProxyUID),
			RunAsGroup:               ptr.To(s.ProxyUID),
			RunAsNonRoot:             ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}
