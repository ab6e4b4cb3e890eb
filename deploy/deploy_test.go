// Package deploy_test checks the manifests in this folder: the CRD copies
// match the generated ones, the kustomization lists every manifest, and a
// real API server accepts them all (strict field validation) and runs the
// controllers as the ServiceAccount the RBAC rules are for.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/yaml"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/controlplane/inject"
	"github.com/metamesh/metamesh/controlplane/kube"
	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// notApplied are the manifests the kustomization leaves out on purpose.
var notApplied = []string{"proxy-example.yaml"}

func kustomization(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ Resources []string }
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	return k.Resources
}

func TestCRDsAreTheGeneratedOnes(t *testing.T) {
	generated, _ := filepath.Glob("../crds/bases/*.yaml")
	copies, _ := filepath.Glob("crds/*.yaml")
	if len(generated) == 0 {
		t.Fatal("no CRDs in ../crds/bases")
	}
	var names []string
	for _, g := range generated {
		names = append(names, filepath.Base(g))
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("crds", filepath.Base(g)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("deploy/crds/%s differs from crds/bases (%v): run make deploy-crds", filepath.Base(g), err)
		}
	}
	for _, c := range copies {
		if !slices.Contains(names, filepath.Base(c)) {
			t.Errorf("deploy/%s is not in crds/bases: run make deploy-crds", c)
		}
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	listed := kustomization(t)
	files, _ := filepath.Glob("*.yaml")
	crds, _ := filepath.Glob("crds/*.yaml")
	for _, f := range append(files, crds...) {
		if f != "kustomization.yaml" && !slices.Contains(notApplied, f) && !slices.Contains(listed, f) {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
	for _, f := range listed {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", f, err)
		}
	}
}

// objects decodes every object of a multi-document YAML file.
func objects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*unstructured.Unstructured
	dec := yamlutil.NewYAMLOrJSONDecoder(f, 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// TestManifestsApply creates every manifest on a real API server, with
// unknown fields refused, then runs the controllers as the control plane's
// ServiceAccount: they must read, elect a leader and write status with
// exactly the permissions the RBAC manifest grants.
func TestManifestsApply(t *testing.T) {
	cfg := kubetest.Config(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c = client.WithFieldValidation(c, metav1.FieldValidationStrict)
	ctx := context.Background()
	for _, file := range append(kustomization(t), notApplied...) {
		for _, u := range objects(t, file) {
			if err := c.Create(ctx, u); err != nil {
				t.Errorf("%s: create %s %s: %v", file, u.GetKind(), u.GetName(), err)
				continue
			}
			if u.GetKind() == "CustomResourceDefinition" {
				waitEstablished(t, c, u.GetName())
			}
		}
	}
	if t.Failed() {
		return
	}

	sa := rest.CopyConfig(cfg)
	sa.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:metamesh-system:metamesh-controlplane"}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	// The sidecar injector too: its CA Secret and its configuration's
	// caBundle are written as the ServiceAccount.
	sidecar := inject.DefaultSidecar()
	sidecar.ProxyImage, sidecar.InitImage, sidecar.XDSAddress = "metamesh", "metamesh-init", "metamesh-controlplane.metamesh-system.svc:15010"
	injectOpts := inject.Options{Namespace: "metamesh-system", Host: "127.0.0.1", Port: freePort(t), Sidecar: sidecar}
	go func() {
		opts := kube.Options{LeaderElection: true, LeaderElectionNamespace: "metamesh-system",
			Setup: func(mgr manager.Manager) error { return inject.Setup(mgr, injectOpts) }}
		done <- kube.Run(runCtx, sa, opts, func(*translate.Input) {})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run as the ServiceAccount: %v", err)
		}
	}()

	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	typed, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	mr := &v1alpha1.MetaRouter{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "rbac-check"},
		Spec:       v1alpha1.MetaRouterSpec{Hosts: []v1alpha1.Host{"nowhere.example"}},
	}
	if err := typed.Create(ctx, mr); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := typed.Get(ctx, client.ObjectKeyFromObject(mr), mr); err != nil {
			t.Fatal(err)
		}
		if len(mr.Status.Conditions) > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no status written by the controllers running as the ServiceAccount: is a permission missing?")
		}
	}
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(admissionregistrationv1.SchemeGroupVersion.WithKind("MutatingWebhookConfiguration"))
		if err := c.Get(ctx, client.ObjectKey{Name: inject.DefaultConfigName}, u); err != nil {
			t.Fatal(err)
		}
		webhooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		if bundle, _, _ := unstructured.NestedString(webhooks[0].(map[string]any), "clientConfig", "caBundle"); bundle != "" {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no caBundle written by the injector running as the ServiceAccount: is a permission missing?")
		}
	}
	checkCertificateAuthority(t, cfg, sa)
}

// checkCertificateAuthority: as the ServiceAccount, the certificate
// authority keeps its root in the Secret metamesh-ca and reviews the
// tokens proxies present (docs/identity.md).
func checkCertificateAuthority(t *testing.T, admin, sa *rest.Config) {
	t.Helper()
	ctx := context.Background()
	c, err := client.New(sa, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := ca.LoadOrCreateSecret(ctx, c, "metamesh-system", "metamesh-ca", "mesh root")
	if err != nil {
		t.Fatalf("the CA Secret, as the ServiceAccount: %v", err)
	}
	again, err := ca.LoadOrCreateSecret(ctx, c, "metamesh-system", "metamesh-ca", "mesh root")
	if err != nil || !bytes.Equal(again.CertPEM(), first.CertPEM()) {
		t.Fatalf("the CA Secret read back as the ServiceAccount: %v", err)
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts("metamesh-system").CreateToken(ctx, "metamesh-controlplane",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"metamesh"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.ReviewToken(ctx, c, tr.Status.Token, []string{"metamesh"}); err != nil {
		t.Fatalf("a TokenReview as the ServiceAccount: %v", err)
	}
}

// freePort returns a port nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitEstablished(t *testing.T, c client.Client, name string) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		if err := c.Get(context.Background(), client.ObjectKey{Name: name}, u); err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conds {
			if m, _ := cond.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return
			}
		}
	}
	t.Fatalf("CRD %s not established", name)
}
