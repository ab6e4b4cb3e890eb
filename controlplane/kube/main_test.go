package kube

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
	"github.com/metamesh/metamesh/controlplane/translate"
	aerakidubbo "github.com/metamesh/metamesh/crds/aeraki/dubbo/v1alpha1"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// apiServer returns a config and a client (for every built-in kind and
// metamesh's and Aeraki's) for the test API server, with metamesh's and
// Aeraki's CRDs installed.
func apiServer(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	cfg := kubetest.Config(t, "../../crds/bases")
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme, aeraki.AddToScheme, aerakidubbo.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

// namespace creates a namespace for one test; the test API server has no
// namespace controller, so the tests use distinct hosts and ports instead
// of relying on deletion.
func namespace(t *testing.T, c client.Client, name string) string {
	t.Helper()
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// running is a source started by startSource.
type running struct {
	latest    atomic.Pointer[translate.Input]
	publishes atomic.Int64
	cancel    context.CancelFunc
	done      chan error
	err       error
	stopped   bool
}

// startSource runs Run until the test ends or stop is called, and fails
// the test if Run returns an error.
func startSource(t *testing.T, cfg *rest.Config, opts Options) *running {
	t.Helper()
	opts.Logger = testLogger()
	if opts.Debounce == 0 {
		opts.Debounce = 20 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- Run(ctx, cfg, opts, func(in *translate.Input) {
			r.latest.Store(in)
			r.publishes.Add(1)
		})
	}()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// stop ends Run and returns its error; later calls return the same.
func (r *running) stop() error {
	if !r.stopped {
		r.cancel()
		r.err, r.stopped = <-r.done, true
	}
	return r.err
}

// testLogger logs to stderr with -v, else nowhere. Not to t.Log: the
// manager's informers may still log for a moment after Run returned, when
// the test is over.
func testLogger() logr.Logger {
	if !testing.Verbose() {
		return logr.Discard()
	}
	return funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
}

// output translates the last published input (nil before the first).
func (r *running) output() *translate.Output {
	in := r.latest.Load()
	if in == nil {
		return nil
	}
	return translate.Translate(in, translate.Options{})
}

// eventually polls cond until it holds, failing the test with cond's last
// explanation after 30 s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var why string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
	}
	t.Fatalf("timed out waiting for %s: %s", what, why)
}

// endpointsOf returns the host:port endpoints of a cluster in out.
func endpointsOf(out *translate.Output, cluster string) []string {
	var addrs []string
	if out == nil {
		return nil
	}
	for _, cla := range out.Resources.Endpoints {
		if cla.ClusterName != cluster {
			continue
		}
		for _, lep := range cla.Endpoints {
			for _, e := range lep.LbEndpoints {
				sa := e.GetEndpoint().GetAddress().GetSocketAddress()
				addrs = append(addrs, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
	}
	return addrs
}
