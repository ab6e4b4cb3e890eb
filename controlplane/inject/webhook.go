package inject

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/metamesh/metamesh/controlplane/ca"
)

// Path is where the webhook is served.
const Path = "/inject"

// Defaults of Options.
const (
	DefaultPort          = 15017
	DefaultServiceName   = "metamesh-controlplane"
	DefaultConfigName    = "metamesh-sidecar-injector"
	DefaultSecretName    = "metamesh-webhook-ca"
	DefaultClusterDomain = "cluster.local"
	// caBundleRecheck is how often the caBundle is checked and restored
	// (someone may re-apply the configuration without it).
	caBundleRecheck = time.Minute
)

// Options configure the injector.
type Options struct {
	// Namespace is the control plane's: its CA Secret and webhook
	// Service live there.
	Namespace string
	// ServiceName is the webhook Service; the serving certificate is for
	// its DNS names. ConfigName is the MutatingWebhookConfiguration whose
	// caBundle is kept; SecretName the CA Secret. Defaults if empty.
	ServiceName, ConfigName, SecretName string
	// ClusterDomain ends the Service's longest DNS name (DefaultClusterDomain if empty).
	ClusterDomain string
	// Host and Port are what the webhook server listens on (all
	// addresses, DefaultPort if zero).
	Host string
	Port int
	// ExtraHosts are more names or IPs for the serving certificate (tests
	// call it at 127.0.0.1).
	ExtraHosts []string
	// Sidecar is what is injected.
	Sidecar Sidecar
	// Logger logs the injections and caBundle updates.
	Logger logr.Logger
}

func (o *Options) complete() error {
	if o.Namespace == "" {
		return errors.New("inject: the control plane's namespace is needed (for the CA Secret)")
	}
	if o.Sidecar.ProxyImage == "" || o.Sidecar.InitImage == "" || o.Sidecar.XDSAddress == "" {
		return errors.New("inject: the proxy image, the init image and the control plane's xDS address are needed")
	}
	set := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	set(&o.ServiceName, DefaultServiceName)
	set(&o.ConfigName, DefaultConfigName)
	set(&o.SecretName, DefaultSecretName)
	set(&o.ClusterDomain, DefaultClusterDomain)
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return nil
}

// ServiceHosts are the DNS names the serving certificate is valid for.
func (o *Options) ServiceHosts() []string {
	svc := o.ServiceName + "." + o.Namespace
	return []string{svc + ".svc", o.ServiceName, svc, svc + ".svc." + o.ClusterDomain}
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, admissionregistrationv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// Setup loads or creates the CA (before returning, so a control plane
// that can't gets a clear error at start) and adds to mgr the webhook
// server and a runnable that keeps the caBundle.
func Setup(mgr manager.Manager, o Options) error {
	if err := o.complete(); err != nil {
		return err
	}
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	authority, err := ca.LoadOrCreateSecret(ctx, c, o.Namespace, o.SecretName, "metamesh sidecar injector CA")
	if err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	sc := &servingCert{ca: authority, hosts: append(o.ServiceHosts(), o.ExtraHosts...)}
	srv := webhook.NewServer(webhook.Options{
		Host: o.Host, Port: o.Port,
		TLSOpts: []func(*tls.Config){func(cfg *tls.Config) { cfg.GetCertificate = sc.get }},
	})
	srv.Register(Path, &webhook.Admission{Handler: &handler{client: c, decoder: admission.NewDecoder(scheme), sidecar: o.Sidecar, log: o.Logger}})
	if err := mgr.Add(srv); err != nil {
		return fmt.Errorf("inject: %w", err)
	}
	return mgr.Add(&caBundle{client: c, name: o.ConfigName, pem: authority.CertPEM(), log: o.Logger})
}

// handler answers the admission reviews of pod creations.
type handler struct {
	client  client.Client
	decoder admission.Decoder
	sidecar Sidecar
	log     logr.Logger
}

// Handle injects the sidecar when the pod and its namespace want it, and
// otherwise allows the pod unchanged.
func (h *handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	var pod corev1.Pod
	if err := h.decoder.Decode(req, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	var ns corev1.Namespace
	if err := h.client.Get(ctx, client.ObjectKey{Name: req.Namespace}, &ns); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("inject: namespace %s: %w", req.Namespace, err))
	}
	if !Wants(&pod, ns.Labels) {
		return admission.Allowed("no injection")
	}
	h.sidecar.Inject(&pod)
	out, err := json.Marshal(&pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	h.log.Info("injecting the sidecar", "namespace", req.Namespace, "pod", podName(&pod))
	return admission.PatchResponseFromRaw(req.Object.Raw, out)
}

func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "…"
}

// caBundle writes the CA certificate into every webhook of the
// MutatingWebhookConfiguration name, at start and then every
// caBundleRecheck, where it differs.
type caBundle struct {
	client client.Client
	name   string
	pem    []byte
	log    logr.Logger
}

// Start keeps the caBundle until ctx ends. A configuration missing or not
// writable is logged and retried: the webhook still serves, and a pod
// the API server can't send to it is handled by its failurePolicy.
func (b *caBundle) Start(ctx context.Context) error {
	t := time.NewTicker(caBundleRecheck)
	defer t.Stop()
	for {
		if err := b.patch(ctx); err != nil && ctx.Err() == nil {
			b.log.Error(err, "webhook caBundle not written; retrying", "mutatingwebhookconfiguration", b.name)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (b *caBundle) patch(ctx context.Context) error {
	var cfg admissionregistrationv1.MutatingWebhookConfiguration
	if err := b.client.Get(ctx, client.ObjectKey{Name: b.name}, &cfg); err != nil {
		return err
	}
	orig := cfg.DeepCopy()
	changed := false
	for i := range cfg.Webhooks {
		if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, b.pem) {
			cfg.Webhooks[i].ClientConfig.CABundle = b.pem
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := b.client.Patch(ctx, &cfg, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	b.log.Info("webhook caBundle written", "mutatingwebhookconfiguration", b.name)
	return nil
}

// NeedLeaderElection is false: every replica serves the webhook and
// writes the same caBundle.
func (b *caBundle) NeedLeaderElection() bool { return false }

var (
	_ admission.Handler              = (*handler)(nil)
	_ manager.LeaderElectionRunnable = (*caBundle)(nil)
)
