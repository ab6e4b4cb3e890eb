package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/certs"
)

// mtlsModeFlag is --mtls-mode on run and controlplane: the mutual TLS
// mode between proxies of services whose DestinationPolicy sets none.
type mtlsModeFlag struct{ mode string }

func (f *mtlsModeFlag) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.mode, "mtls-mode", string(v1alpha1.MTLSPermissive),
		"mutual TLS between proxies for services whose DestinationPolicy sets no mtls.mode: DISABLE, PERMISSIVE (accept mutual TLS and plaintext) or STRICT (refuse plaintext)")
}

func (f *mtlsModeFlag) value() (v1alpha1.MTLSMode, error) {
	m := v1alpha1.MTLSMode(f.mode)
	if !slices.Contains(v1alpha1.MTLSModes, m) {
		return "", fmt.Errorf("--mtls-mode: %q, want one of %v", f.mode, v1alpha1.MTLSModes)
	}
	return m, nil
}

// identityFiles are the proxy's --identity-cert, --identity-key and
// --identity-roots: a workload identity from files instead of the control
// plane's SDS Secrets.
type identityFiles struct{ cert, key, roots string }

// identityPoll is how often identity files are checked for a change.
const identityPoll = 5 * time.Second

func (f *identityFiles) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cert, "identity-cert", "", "PEM workload certificate chain (a SPIFFE ID) for mutual TLS between proxies, instead of the control plane's; read again when it changes")
	fs.StringVar(&f.key, "identity-key", "", "PEM private key of --identity-cert")
	fs.StringVar(&f.roots, "identity-roots", "", "PEM trust bundle peers' certificates must chain to (with --identity-cert)")
}

func (f *identityFiles) set() bool { return f.cert != "" || f.key != "" || f.roots != "" }

// apply gives srv its identity store, counted in srv's metrics. With the
// flags set it holds the files' identity, and watch (nil otherwise) keeps
// it up to date with them.
func (f *identityFiles) apply(log *zap.Logger, srv *proxy.Server) (store *certs.Store, watch func(context.Context) error, err error) {
	store = certs.NewStore()
	srv.SetIdentity(store)
	srv.Metrics().Register(store.Collector())
	if !f.set() {
		return store, nil, nil
	}
	id, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	store.Set(id)
	log.Info("workload certificate in force", zap.Stringer("id", id.ID), zap.Time("not_after", id.NotAfter()), zap.String("file", f.cert))
	return store, func(ctx context.Context) error { return f.watch(ctx, log, store) }, nil
}

// load reads the files into an Identity.
func (f *identityFiles) load() (*certs.Identity, error) {
	if f.cert == "" || f.key == "" || f.roots == "" {
		return nil, errors.New("--identity-cert, --identity-key and --identity-roots go together")
	}
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("--identity-cert: %w", err)
	}
	b, err := os.ReadFile(f.roots)
	if err != nil {
		return nil, fmt.Errorf("--identity-roots: %w", err)
	}
	roots, err := certs.ParsePEM(b)
	if err != nil || len(roots) == 0 {
		return nil, fmt.Errorf("--identity-roots: %s holds no PEM certificate (%v)", f.roots, err)
	}
	id, err := certs.New(&pair, roots)
	if err != nil {
		return nil, fmt.Errorf("--identity-cert: %w", err)
	}
	return id, nil
}

// watch puts the files' identity in store when one of them changes,
// until ctx ends; an identity that no longer loads is logged and the
// last good one stays.
func (f *identityFiles) watch(ctx context.Context, log *zap.Logger, store *certs.Store) error {
	mod := f.modTimes()
	t := time.NewTicker(identityPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := f.modTimes()
		if now == mod {
			continue
		}
		mod = now
		id, err := f.load()
		if err != nil {
			log.Warn("workload identity files changed but don't load; the last good identity stays", zap.Error(err))
			continue
		}
		store.Set(id)
		log.Info("workload certificate in force", zap.Stringer("id", id.ID), zap.Time("not_after", id.NotAfter()), zap.String("file", f.cert))
	}
}

func (f *identityFiles) modTimes() [3]time.Time {
	var out [3]time.Time
	for i, p := range []string{f.cert, f.key, f.roots} {
		if st, err := os.Stat(p); err == nil {
			out[i] = st.ModTime()
		}
	}
	return out
}
