package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// --gateway takes namespace/name, and only with --xds.
func TestGatewayFlag(t *testing.T) {
	cmd := &cobra.Command{}
	for _, c := range []struct {
		flags   adsFlags
		wantErr string
	}{
		{adsFlags{addr: "127.0.0.1:1", plaintext: true, gateway: "istio-system/ingress"}, ""},
		{adsFlags{addr: "127.0.0.1:1", plaintext: true, gateway: "ingress"}, "want namespace/name"},
		{adsFlags{addr: "127.0.0.1:1", plaintext: true, gateway: "Istio/ingress"}, "namespace must be a namespace name"},
		{adsFlags{addr: "127.0.0.1:1", plaintext: true, gateway: "a/b/c"}, `must be "mesh"`},
		{adsFlags{gateway: "istio-system/ingress"}, "only with --xds"},
	} {
		c.flags.node = "n"
		client, err := c.flags.client(cmd, zap.NewNop(), proxy.New(zap.NewNop(), metrics.NewProxy()), nil)
		switch {
		case c.wantErr == "" && (err != nil || client == nil):
			t.Errorf("--gateway %q: %v", c.flags.gateway, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("--gateway %q: err %v, want one saying %q", c.flags.gateway, err, c.wantErr)
		}
	}
}
