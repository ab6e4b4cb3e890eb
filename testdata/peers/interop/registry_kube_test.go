package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// TestRegistryUnreachableKubernetesStatus runs `metamesh controlplane` on
// a real kube-apiserver (envtest: KUBEBUILDER_ASSETS, else skipped) with
// --registry on a real ZooKeeper where a real dubbo-go provider registers.
// The cluster's ServiceEntry for the interface (no endpoints of its own)
// reports RegistryReachable=True; with ZooKeeper stopped, False with
// reason RegistryUnreachable, the registry's URL and since when, while
// Accepted stays True; True again once ZooKeeper is back.
func TestRegistryUnreachableKubernetesStatus(t *testing.T) {
	// envtest logs through controller-runtime's global logger, which
	// complains of never being set when the process outlives 30 s.
	ctrllog.SetLogger(logr.Discard())
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, kubetest.KubeConfig(t, "../../../crds/bases"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := kubeClient(t, kubetest.Config(t))
	ctx := context.Background()
	const ns = "registry-status"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	se := &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "greetings"}, Spec: v1alpha1.ServiceEntrySpec{
		Hosts: []v1alpha1.Host{iface}, Ports: []v1alpha1.ServicePort{{Number: 20880, Name: "dubbo", Protocol: "dubbo"}}}}
	if err := c.Create(ctx, se); err != nil {
		t.Fatal(err)
	}

	zk := harness.StartZooKeeper(t)
	regURL := "zookeeper://" + zk.Addr
	harness.StartGreeterWith(t, harness.GreeterOptions{Registry: regURL})
	cp := harness.StartProcess(t, "metamesh controlplane", harness.BuildMetamesh(t), "controlplane", "--kubeconfig", kubeconfig,
		"--registry", regURL, "--insecure", "--leader-elect=false", "--xds", harness.FreeAddr(t), "--admin", harness.FreeAddr(t),
		"--ca-dir", t.TempDir()) // the test API server has no metamesh-system for the CA Secret

	condition := func(status metav1.ConditionStatus, reason, msg string) {
		t.Helper()
		var last string
		waitFor(t, 60*time.Second, fmt.Sprintf("RegistryReachable=%s %s %q", status, reason, msg), func() bool {
			if err := c.Get(ctx, client.ObjectKeyFromObject(se), se); err != nil {
				last = err.Error()
				return false
			}
			got := meta.FindStatusCondition(se.Status.Conditions, v1alpha1.ConditionRegistryReachable)
			if got == nil {
				last = fmt.Sprintf("no condition in %+v", se.Status.Conditions)
				return false
			}
			last = fmt.Sprintf("%s %s %q", got.Status, got.Reason, got.Message)
			return got.Status == status && got.Reason == reason && strings.Contains(got.Message, msg)
		})
		if acc := meta.FindStatusCondition(se.Status.Conditions, v1alpha1.ConditionAccepted); acc == nil || acc.Status != metav1.ConditionTrue {
			t.Errorf("Accepted %+v with RegistryReachable %s", acc, last)
		}
	}
	condition(metav1.ConditionTrue, v1alpha1.ReasonRegistryReachable, "endpoints are the providers registered in "+regURL)

	zk.Stop()
	condition(metav1.ConditionFalse, v1alpha1.ReasonRegistryUnreachable, "endpoints are the last known from "+regURL+" since ")
	if !strings.Contains(cp.Output(), "registry unreachable: endpoints are the last known") {
		t.Errorf("controlplane did not log the ServiceEntry flagged")
	}

	zk.Start(t)
	condition(metav1.ConditionTrue, v1alpha1.ReasonRegistryReachable, regURL)
}

// kubeClient is a client of cfg's cluster for the built-in kinds and
// metamesh's.
func kubeClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
