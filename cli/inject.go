package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/metamesh/metamesh/controlplane/inject"
)

// injectFlags configure the sidecar injector of `metamesh controlplane`
// in Kubernetes mode.
type injectFlags struct {
	enabled                   bool
	port                      int
	namespace, service        string
	proxyImage, initImage     string
	xdsAddr, xdsCAConfigMap   string
	captureInbound            bool
	cpuRequest, memoryRequest string
}

func (i *injectFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&i.enabled, "inject", false, "serve the sidecar injector webhook (Kubernetes mode; pods of namespaces labelled metamesh.io/inject=enabled)")
	f.IntVar(&i.port, "inject-port", inject.DefaultPort, "port the injector webhook is served on (TLS, certificate issued by the control plane)")
	f.StringVar(&i.namespace, "inject-namespace", "", "namespace of the injector's CA Secret and Service (default: the Pod's)")
	f.StringVar(&i.service, "inject-service", inject.DefaultServiceName, "Service the API server reaches the injector at: the certificate's name")
	f.StringVar(&i.proxyImage, "inject-proxy-image", "", "image of the injected proxy sidecar")
	f.StringVar(&i.initImage, "inject-init-image", "", "image of the injected init container (needs the iptables tools: the Dockerfile's init target)")
	f.StringVar(&i.xdsAddr, "inject-xds-address", "", "ADS address the sidecars dial, host:port")
	f.StringVar(&i.xdsCAConfigMap, "inject-xds-ca-configmap", "", "ConfigMap (key ca.crt) in each pod's namespace with the CA of the control plane's certificate; empty: the sidecars use plaintext")
	f.BoolVar(&i.captureInbound, "inject-capture-inbound", false, "also capture inbound connections in injected pods")
	def := inject.DefaultSidecar()
	f.StringVar(&i.cpuRequest, "inject-proxy-cpu", def.CPURequest.String(), "CPU request of the sidecar")
	f.StringVar(&i.memoryRequest, "inject-proxy-memory", def.MemoryRequest.String(), "memory request of the sidecar")
}

// setup returns the kube.Options.Setup that adds the injector, or nil
// without --inject.
func (i *injectFlags) setup(clusterDomain string, log logr.Logger) (func(manager.Manager) error, error) {
	if !i.enabled {
		return nil, nil
	}
	if i.proxyImage == "" || i.initImage == "" || i.xdsAddr == "" {
		return nil, errors.New("--inject: needs --inject-proxy-image, --inject-init-image and --inject-xds-address")
	}
	ns := i.namespace
	if ns == "" {
		b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			return nil, fmt.Errorf("--inject: --inject-namespace not set and not in a Pod: %w", err)
		}
		ns = strings.TrimSpace(string(b))
	}
	sc := inject.DefaultSidecar()
	sc.ProxyImage, sc.InitImage, sc.XDSAddress, sc.XDSCAConfigMap = i.proxyImage, i.initImage, i.xdsAddr, i.xdsCAConfigMap
	sc.CaptureInbound = i.captureInbound
	var err error
	if sc.CPURequest, err = resource.ParseQuantity(i.cpuRequest); err != nil {
		return nil, fmt.Errorf("--inject-proxy-cpu: %w", err)
	}
	if sc.MemoryRequest, err = resource.ParseQuantity(i.memoryRequest); err != nil {
		return nil, fmt.Errorf("--inject-proxy-memory: %w", err)
	}
	opts := inject.Options{Namespace: ns, ServiceName: i.service, ClusterDomain: clusterDomain, Port: i.port,
		Sidecar: sc, Logger: log.WithName("inject")}
	return func(mgr manager.Manager) error { return inject.Setup(mgr, opts) }, nil
}
