package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/controlplane/xds"
)

// TokenAudience is the audience of the projected service-account token a
// sidecar proves its identity with (docs/identity.md).
const TokenAudience = "metamesh"

// caSecretName is the Secret holding the mesh's root in Kubernetes.
const caSecretName = "metamesh-ca"

// reviewQPS bounds the control plane's TokenReviews per second.
const reviewQPS = 50

// caFlags are the certificate authority that issues the proxies'
// workload certificates (docs/identity.md).
type caFlags struct {
	trustDomain    string
	cert, key, dir string
	ttl            time.Duration
}

func (f *caFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.trustDomain, "trust-domain", "cluster.local", "trust domain of the workload SPIFFE IDs, spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>")
	fs.StringVar(&f.cert, "ca-cert", "", "PEM root certificate that signs the workload certificates (with --ca-key; default: a root metamesh makes and keeps, docs/identity.md)")
	fs.StringVar(&f.key, "ca-key", "", "PEM private key of --ca-cert")
	fs.StringVar(&f.dir, "ca-dir", "", "folder keeping the root metamesh makes, in file mode (default: $XDG_CONFIG_HOME/metamesh/ca, i.e. ~/.config/metamesh/ca)")
	fs.DurationVar(&f.ttl, "workload-cert-ttl", xds.DefaultWorkloadTTL, "lifetime of a workload certificate; each is re-issued at about half of it")
}

// workloads are the flags' Workloads: the root of --ca-cert and --ca-key,
// else the one kept in the Secret metamesh-ca of namespace (Kubernetes:
// kube is set), else in --ca-dir.
func (f *caFlags) workloads(ctx context.Context, kube *rest.Config, namespace string) (xds.Workloads, error) {
	td, err := spiffeid.TrustDomainFromString(f.trustDomain)
	if err != nil {
		return xds.Workloads{}, fmt.Errorf("--trust-domain: %w", err)
	}
	if f.ttl < time.Second {
		return xds.Workloads{}, fmt.Errorf("--workload-cert-ttl: %s is less than a second", f.ttl)
	}
	w := xds.Workloads{TrustDomain: td, TTL: f.ttl}
	var c client.Client
	if kube != nil {
		// TokenReviews at most reviewQPS a second: a reconnection storm
		// of 2,000 sidecars gets its certificates within a minute (its
		// config at once) without flooding the API server.
		kube = rest.CopyConfig(kube)
		kube.QPS, kube.Burst = reviewQPS, 2*reviewQPS
		if c, err = client.New(kube, client.Options{}); err != nil {
			return xds.Workloads{}, err
		}
		w.Review = func(ctx context.Context, token string) (ca.Account, error) {
			return ca.ReviewToken(ctx, c, token, []string{TokenAudience})
		}
	}
	switch {
	case (f.cert == "") != (f.key == ""):
		return xds.Workloads{}, errors.New("--ca-cert and --ca-key go together")
	case f.cert != "" && f.dir != "":
		return xds.Workloads{}, errors.New("--ca-dir: not with --ca-cert and --ca-key")
	case f.cert != "":
		w.CA, err = ca.LoadFiles(f.cert, f.key)
	case kube != nil && f.dir == "":
		w.CA, err = ca.LoadOrCreateSecret(ctx, c, namespace, caSecretName, "metamesh mesh root")
	default:
		dir := f.dir
		if dir == "" {
			base, derr := os.UserConfigDir()
			if derr != nil {
				return xds.Workloads{}, fmt.Errorf("--ca-dir: not set, and no default: %w", derr)
			}
			dir = filepath.Join(base, "metamesh", "ca")
		}
		if w.CA, err = ca.LoadOrCreateDir(dir, "metamesh mesh root"); err != nil {
			err = fmt.Errorf("--ca-dir: %w", err)
		}
	}
	if err != nil {
		return xds.Workloads{}, err
	}
	return w, nil
}

// issue makes srv issue workload certificates as the flags say.
func (f *caFlags) issue(ctx context.Context, log *zap.Logger, srv *xds.Server, kube *rest.Config, namespace string) error {
	w, err := f.workloads(ctx, kube, namespace)
	if err != nil {
		return err
	}
	log.Info("issuing workload certificates", zap.String("trust_domain", w.TrustDomain.Name()), zap.Duration("ttl", w.TTL),
		zap.String("root", w.CA.Cert().Subject.CommonName), zap.Time("root_not_after", w.CA.Cert().NotAfter),
		zap.Bool("token_review", w.Review != nil))
	return srv.IssueCertificates(w)
}
