package xds_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// TestSDSTokenReview: against a real kube-apiserver, a proxy presenting
// its service account's projected token (audience metamesh) gets that
// account's certificate; one whose node ID names another namespace, or
// another pod than the token is bound to, or whose token is for another
// audience, is refused one and still gets its routing config.
func TestSDSTokenReview(t *testing.T) {
	cfg := kubetest.Config(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sds-"}}
	if err := c.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "greeter"}}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "greeter-0"},
		Spec: corev1.PodSpec{ServiceAccountName: "greeter", Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tokenFile := func(name, audience string, bound bool) string {
		req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}
		if bound {
			req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
		}
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "greeter", req, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(tr.Status.Token), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	root := newAuthority(t)
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	err = srv.IssueCertificates(xds.Workloads{CA: root, TrustDomain: trustDomain, Review: func(ctx context.Context, token string) (ca.Account, error) {
		return ca.ReviewToken(ctx, c, token, []string{"metamesh"})
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Update(resourcesFor(1, "v1"))

	own := startCertClient(t, addr, "greeter-0."+ns, xdsclient.ProtocolDelta, nil, tokenFile("bound", "metamesh", true))
	unbound := startCertClient(t, addr, "greeter-7."+ns, xdsclient.ProtocolSotw, nil, tokenFile("unbound", "metamesh", false))
	refused := map[string]*certClient{
		"another namespace": startCertClient(t, addr, "greeter-0.kube-system", xdsclient.ProtocolDelta, nil, tokenFile("bound", "metamesh", true)),
		"another pod":       startCertClient(t, addr, "admin-0."+ns, xdsclient.ProtocolSotw, nil, tokenFile("bound", "metamesh", true)),
		"another audience":  startCertClient(t, addr, "greeter-1."+ns, xdsclient.ProtocolDelta, nil, tokenFile("other", "someone-else", false)),
	}

	want := "spiffe://cluster.local/ns/" + ns + "/sa/greeter"
	for _, p := range []*certClient{own, unbound} {
		p.ready(t)
		if got := p.store.Current().ID.String(); got != want {
			t.Fatalf("the proxy's identity is %s, want %s", got, want)
		}
	}
	for name, p := range refused {
		waitFor(t, 20*time.Second, "the routing config of the proxy in "+name, func() bool { return p.apply.count() > 0 })
	}
	for reason, n := range map[string]float64{"node": 2, "token": 1} {
		waitFor(t, 20*time.Second, "the refusals for "+reason, func() bool {
			return metric(t, srv.Registry(), "metamesh_controlplane_workload_certs_refused_total", map[string]string{"reason": reason}) == n
		})
	}
	for name, p := range refused {
		if id := p.store.Current(); id != nil {
			t.Errorf("the proxy in %s got %s's certificate", name, id.ID)
		}
	}
}
