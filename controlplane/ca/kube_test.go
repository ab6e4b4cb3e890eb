package ca

import (
	"context"
	"strings"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// kubeClients returns a client and a clientset for the test API server,
// with a new namespace.
func kubeClients(t *testing.T) (client.Client, *kubernetes.Clientset, string) {
	t.Helper()
	cfg := kubetest.Config(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ca-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return c, cs, ns.Name
}

// TestReviewToken: a real kube-apiserver says whose projected token a
// proxy presents; a token for another audience, or none at all, is
// refused with the API server's reason.
func TestReviewToken(t *testing.T) {
	c, cs, ns := kubeClients(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "greeter"}}); err != nil {
		t.Fatal(err)
	}
	token := func(audience string) string {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "greeter",
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	acct, err := ReviewToken(ctx, c, token("metamesh"), []string{"metamesh"})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Namespace != ns || acct.ServiceAccount != "greeter" {
		t.Fatalf("the token is %+v's, want %s/greeter's", acct, ns)
	}
	// A projected token is bound to its pod, which the review names.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "greeter-0"},
		Spec: corev1.PodSpec{ServiceAccountName: "greeter", Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	bound, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "greeter", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:      []string{"metamesh"},
		BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acct, err = ReviewToken(ctx, c, bound.Status.Token, []string{"metamesh"}); err != nil || acct.Pod != "greeter-0" {
		t.Fatalf("a pod's token: %+v, %v; want pod greeter-0", acct, err)
	}
	if _, err := ReviewToken(ctx, c, token("someone-else"), []string{"metamesh"}); err == nil || !strings.Contains(err.Error(), "token refused") {
		t.Fatalf("a token for another audience: error %v, want it refused", err)
	}
	if _, err := ReviewToken(ctx, c, "not-a-token", []string{"metamesh"}); err == nil || !strings.Contains(err.Error(), "token refused") {
		t.Fatalf("garbage: error %v, want it refused", err)
	}
}

// TestLoadOrCreateSecret: replicas starting together end up with one
// root, the Secret's.
func TestLoadOrCreateSecret(t *testing.T) {
	c, _, ns := kubeClients(t)
	roots := make([]string, 4)
	var wg sync.WaitGroup
	for i := range roots {
		wg.Go(func() {
			a, err := LoadOrCreateSecret(context.Background(), c, ns, "metamesh-ca", "mesh root")
			if err != nil {
				t.Error(err)
				return
			}
			roots[i] = string(a.CertPEM())
		})
	}
	wg.Wait()
	for _, r := range roots[1:] {
		if r != roots[0] {
			t.Fatal("replicas starting together got different roots")
		}
	}
	var s corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "metamesh-ca"}, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data[CertName]) != roots[0] {
		t.Fatal("the replicas' root is not the Secret's")
	}
}
