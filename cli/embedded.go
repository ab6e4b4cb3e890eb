package cli

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// embeddedADS is `metamesh run --xds ADDR`: the run's own config also
// served over ADS, so other proxies (`metamesh proxy --xds`) follow the
// same folder.
type embeddedADS struct {
	addr      string
	tls       xds.TLSFiles
	plaintext bool
}

func (e *embeddedADS) register(f *pflag.FlagSet) {
	f.StringVar(&e.addr, "xds", "", "also serve the config over ADS on this address, to other proxies (off when empty)")
	f.StringVar(&e.tls.Cert, "xds-cert", "", "PEM certificate (chain) of the ADS server")
	f.StringVar(&e.tls.Key, "xds-key", "", "PEM private key of --xds-cert")
	f.StringVar(&e.tls.ClientCA, "xds-client-ca", "", "PEM CA bundle: require every proxy to present a client certificate it signed")
	f.BoolVar(&e.plaintext, "insecure", false, "serve ADS in plaintext, without TLS")
}

// start serves ADS until ctx ends when --xds is set, with its series on
// reg, and returns what publishes each applied config to it (a no-op
// without --xds).
func (e *embeddedADS) start(ctx context.Context, log *zap.Logger, reg prometheus.Registerer) (func(*xdsapi.Resources), error) {
	if e.addr == "" {
		if e.plaintext || e.tls != (xds.TLSFiles{}) {
			return nil, errors.New("--insecure, --xds-cert, --xds-key and --xds-client-ca need --xds")
		}
		return func(*xdsapi.Resources) {}, nil
	}
	tlsCfg, err := serverTLS(e.tls, e.plaintext)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", e.addr)
	if err != nil {
		return nil, fmt.Errorf("--xds: %w", err)
	}
	srv := xds.New(ctx, xds.Options{Log: log.Named("xds"), Registerer: reg})
	g := grpc.NewServer(xds.GRPCOptions(tlsCfg)...)
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	go func() {
		<-ctx.Done()
		g.Stop()
	}()
	log.Info("serving the config over ADS", zap.Stringer("xds", ln.Addr()), zap.Bool("tls", tlsCfg != nil))
	return srv.Update, nil
}
