package inject

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

const cpNamespace = "metamesh-system"

// injector is a running injector on the test API server, registered with
// the MutatingWebhookConfiguration of deploy/webhook.yaml (its
// clientConfig pointed at the test's address instead of the Service).
type injector struct {
	c    client.Client
	addr string
	ca   *x509.CertPool
}

func startInjector(t *testing.T) *injector {
	t.Helper()
	cfg := kubetest.Config(t)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cpNamespace}}); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	mwc := deployedConfig(t)
	for i := range mwc.Webhooks {
		url := "https://" + addr + Path
		mwc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url}
	}
	if err := c.Create(ctx, mwc); err != nil {
		t.Fatal(err)
	}

	runInjector(t, cfg, port)
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: cpNamespace, Name: DefaultSecretName}, &s); err != nil {
		t.Fatalf("the CA Secret: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.Data[ca.CertName]) {
		t.Fatal("the CA Secret's ca.crt holds no certificate")
	}
	eventually(t, "the caBundle", func() error {
		var got admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: DefaultConfigName}, &got); err != nil {
			return err
		}
		for _, w := range got.Webhooks {
			if string(w.ClientConfig.CABundle) != string(s.Data[ca.CertName]) {
				return fmt.Errorf("%s: caBundle is not the CA's certificate", w.Name)
			}
		}
		return nil
	})
	in := &injector{c: c, addr: addr, ca: pool}
	eventually(t, "the webhook server", func() error {
		conn, err := in.dial(DefaultServiceName + "." + cpNamespace + ".svc")
		if err == nil {
			conn.Close()
		}
		return err
	})
	return in
}

// runInjector starts a manager with the injector until the test ends.
func runInjector(t *testing.T, cfg *rest.Config, port int) {
	t.Helper()
	mgr, err := manager.New(cfg, manager.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	sc := DefaultSidecar()
	sc.ProxyImage, sc.InitImage, sc.XDSAddress = "metamesh:test", "metamesh-init:test", "metamesh-controlplane.metamesh-system.svc:15010"
	err = Setup(mgr, Options{Namespace: cpNamespace, Host: "127.0.0.1", Port: port, ExtraHosts: []string{"127.0.0.1"}, Sidecar: sc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

func (in *injector) dial(serverName string) (*tls.Conn, error) {
	return tls.Dial("tcp", in.addr, &tls.Config{RootCAs: in.ca, ServerName: serverName})
}

// deployedConfig is deploy/webhook.yaml's configuration.
func deployedConfig(t *testing.T) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	f, err := os.Open("../../deploy/webhook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.NewYAMLOrJSONDecoder(f, 4096).Decode(&mwc); err != nil {
		t.Fatal(err)
	}
	if mwc.Name != DefaultConfigName || len(mwc.Webhooks) != 2 {
		t.Fatalf("deploy/webhook.yaml: %s with %d webhooks", mwc.Name, len(mwc.Webhooks))
	}
	return &mwc
}

// freePort returns a port nothing listened on a moment ago: the webhook
// server opens its own listener.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond until it returns nil, failing after 30 s.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	var err error
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if err = cond(); err == nil {
			return
		}
	}
	t.Fatalf("timed out waiting for %s: %v", what, err)
}

func TestInjector(t *testing.T) {
	in := startInjector(t)
	ctx := context.Background()

	t.Run("certificate", func(t *testing.T) {
		for _, name := range []string{"metamesh-controlplane.metamesh-system.svc", "metamesh-controlplane.metamesh-system.svc.cluster.local"} {
			conn, err := in.dial(name)
			if err != nil {
				t.Fatalf("TLS to the webhook as %s: %v", name, err)
			}
			conn.Close()
		}
		var unknown x509.HostnameError
		if _, err := in.dial("metamesh-controlplane.default.svc"); !errors.As(err, &unknown) {
			t.Errorf("a name the certificate is not for: %v, want a hostname error", err)
		}
	})

	namespace := func(name string, labels map[string]string) {
		t.Helper()
		if err := in.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}); err != nil {
			t.Fatal(err)
		}
	}
	namespace("meshed", map[string]string{NamespaceLabel: LabelEnabled})
	namespace("plain", nil)
	namespace("disabled", map[string]string{NamespaceLabel: "disabled"})
	create := func(ns, name string, annotations map[string]string) *corev1.Pod {
		t.Helper()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		}
		if err := in.c.Create(ctx, pod); err != nil {
			t.Fatalf("create pod %s/%s: %v", ns, name, err)
		}
		return pod
	}

	t.Run("labelled namespace", func(t *testing.T) {
		checkInjected(t, create("meshed", "app", nil))
	})
	for _, tc := range []struct {
		ns, name string
		ann      map[string]string
		want     bool
	}{
		{"meshed", "opted-out", map[string]string{PodAnnotation: "false"}, false},
		{"plain", "plain", nil, false},
		{"plain", "opted-in", map[string]string{PodAnnotation: "true"}, true},
		{"disabled", "opted-in", map[string]string{PodAnnotation: "true"}, false},
	} {
		t.Run(tc.ns+"/"+tc.name, func(t *testing.T) {
			pod := create(tc.ns, tc.name, tc.ann)
			if got := len(pod.Spec.Containers) == 2; got != tc.want {
				t.Errorf("injected: %v, want %v (containers %d, init containers %d)", got, tc.want, len(pod.Spec.Containers), len(pod.Spec.InitContainers))
			}
		})
	}
}

// checkInjected checks what the API server stored for an injected pod.
func checkInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if len(pod.Spec.InitContainers) != 1 || len(pod.Spec.Containers) != 2 || pod.Spec.Containers[0].Name != "app" {
		t.Fatalf("not injected: init containers %v, containers %v", names(pod.Spec.InitContainers), names(pod.Spec.Containers))
	}
	init, proxy := pod.Spec.InitContainers[0], pod.Spec.Containers[1]
	if init.Name != InitName || init.Image != "metamesh-init:test" || !slices.Equal(init.Args, []string{"iptables", "--proxy-uid=1337", "--outbound-port=15001"}) {
		t.Errorf("init container: %s %s %q", init.Name, init.Image, init.Args)
	}
	if caps := init.SecurityContext.Capabilities; caps == nil || !slices.Equal(caps.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
		!slices.Equal(caps.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("init container capabilities: %+v, want NET_ADMIN and NET_RAW only", caps)
	}
	wantArgs := []string{"proxy", "--xds=metamesh-controlplane.metamesh-system.svc:15010", "--node=$(POD_NAME).$(POD_NAMESPACE)",
		"--capture-outbound=127.0.0.1:15001", "--insecure", "--identity-token=/var/run/secrets/metamesh/token"}
	if proxy.Name != SidecarName || proxy.Image != "metamesh:test" || !slices.Equal(proxy.Args, wantArgs) {
		t.Errorf("sidecar: %s %s %q", proxy.Name, proxy.Image, proxy.Args)
	}
	sc := proxy.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 1337 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		len(sc.Capabilities.Add) != 0 || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("sidecar security context: %+v", sc)
	}
	if r := proxy.Resources.Requests; r.Cpu().String() != "100m" || r.Memory().String() != "64Mi" {
		t.Errorf("sidecar requests: %v", r)
	}
	if len(proxy.Env) != 2 || proxy.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.name" || proxy.Env[1].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("sidecar env: %+v", proxy.Env)
	}
	if pod.Annotations[StatusAnnotation] != "true" {
		t.Errorf("annotations: %v", pod.Annotations)
	}
	if _, ok := pod.Labels[TLSModeLabel]; ok {
		t.Errorf("a sidecar without inbound capture is labelled %s (it can't terminate mutual TLS)", TLSModeLabel)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}
