package cli

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/xds"
)

// embeddedADS is `metamesh run --xds ADDR`: the run's own config also
// served over ADS, so other proxies (`metamesh proxy --xds`) follow the
// same folder, and their workload certificates issued as in file mode
// (docs/identity.md).
type embeddedADS struct {
	addr      string
	tls       xds.TLSFiles
	plaintext bool
	ca        caFlags
}

func (e *embeddedADS) register(f *pflag.FlagSet) {
	f.StringVar(&e.addr, "xds", "", "also serve the config over ADS on this address, to other proxies (off when empty)")
	f.StringVar(&e.tls.Cert, "xds-cert", "", "PEM certificate (chain) of the ADS server")
	f.StringVar(&e.tls.Key, "xds-key", "", "PEM private key of --xds-cert")
	f.StringVar(&e.tls.ClientCA, "xds-client-ca", "", "PEM CA bundle: require every proxy to present a client certificate it signed")
	f.BoolVar(&e.plaintext, "insecure", false, "serve ADS in plaintext, without TLS")
	e.ca.register(f)
}

// add adds to g the ADS server --xds asks for, with its series on reg,
// and returns it; nil without --xds.
func (e *embeddedADS) add(g *group, log *zap.Logger, reg prometheus.Registerer) (*xds.Server, error) {
	if e.addr == "" {
		if e.plaintext || e.tls != (xds.TLSFiles{}) || e.ca.cert != "" || e.ca.key != "" || e.ca.dir != "" {
			return nil, errors.New("--insecure, --xds-cert, --xds-key, --xds-client-ca, --ca-cert, --ca-key and --ca-dir need --xds")
		}
		return nil, nil
	}
	tlsCfg, err := serverTLS(e.tls, e.plaintext)
	if err != nil {
		return nil, err
	}
	srv := xds.New(xds.Options{Log: log.Named("xds"), Registerer: reg})
	if err := e.ca.issue(context.Background(), log, srv, nil, ""); err != nil {
		return nil, err
	}
	addADS(g, srv, e.addr, tlsCfg, log)
	return srv, nil
}
