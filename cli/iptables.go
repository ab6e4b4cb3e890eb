package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/metamesh/metamesh/proxy/capture/iptables"
)

func iptablesCmd() *cobra.Command {
	var (
		cfg                      = iptables.DefaultConfig()
		outPorts, cidrs, inPorts []string
		outbound, inbound        uint16
		dryRun, clean            bool
		backend                  string
	)
	cmd := &cobra.Command{
		Use:   "iptables [--proxy-uid 1337] [--outbound-port 15001] [--inbound-port 15006] [--capture-inbound] [--exclude-outbound-ports P,…] [--exclude-outbound-cidrs C,…] [--exclude-inbound-ports P,…] [--dry-run] [--clean]",
		Short: "Install the NAT rules that send this network namespace's TCP through the sidecar proxy",
		Long: "iptables redirects, in the current network namespace (a sidecar init\n" +
			"container's job), every outbound TCP connection to 127.0.0.1 (::1 for\n" +
			"IPv6) on --outbound-port, except the proxy's own (--proxy-uid), those\n" +
			"leaving through the loopback interface and the excluded ports and\n" +
			"networks; with --capture-inbound also every inbound TCP connection to\n" +
			"--inbound-port, except to the excluded ports and the two capture ports.\n" +
			"The rules live in chains of their own (METAMESH_*), installed with one\n" +
			"atomic iptables-restore per family; running it again replaces them,\n" +
			"--clean removes them. IPv6 gets the same rules when the kernel has it.\n" +
			"Needs the NET_ADMIN capability (and NET_RAW for the legacy back end).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.ExcludeOutboundPorts, err = parsePorts("--exclude-outbound-ports", outPorts); err != nil {
				return err
			}
			if cfg.ExcludeInboundPorts, err = parsePorts("--exclude-inbound-ports", inPorts); err != nil {
				return err
			}
			if cfg.ExcludeOutboundCIDRs, err = parseCIDRs(cidrs); err != nil {
				return err
			}
			cfg.OutboundPort, cfg.InboundPort = outbound, inbound
			b, err := iptables.ParseBackend(backend)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case dryRun && clean:
				return fmt.Errorf("--dry-run and --clean: one at a time")
			case dryRun:
				if err := cfg.Validate(); err != nil {
					return err
				}
				for _, f := range []iptables.Family{iptables.IPv4, iptables.IPv6} {
					tool := map[iptables.Family]string{iptables.IPv4: "iptables-restore", iptables.IPv6: "ip6tables-restore"}[f]
					fmt.Fprintf(out, "# %s: %s --noflush\n%s", f, tool, iptables.Render(cfg, f))
				}
				return nil
			}
			opts := iptables.Options{Backend: b}
			var res []iptables.Result
			if clean {
				res, err = iptables.Clean(cmd.Context(), opts)
			} else {
				res, err = iptables.Apply(cmd.Context(), cfg, opts)
			}
			for _, r := range res {
				fmt.Fprintf(out, "%s: %d metamesh rules (%s)\n", r.Family, r.Rules, r.Tool)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&cfg.ProxyUID, "proxy-uid", iptables.DefaultProxyUID, "user the proxy runs as: its connections are never captured")
	f.Uint16Var(&outbound, "outbound-port", iptables.DefaultOutboundPort, "port outbound connections are redirected to (the proxy's --capture-outbound)")
	f.Uint16Var(&inbound, "inbound-port", iptables.DefaultInboundPort, "port inbound connections are redirected to (the proxy's --capture-inbound)")
	f.BoolVar(&cfg.CaptureInbound, "capture-inbound", false, "also redirect inbound TCP to --inbound-port")
	f.StringSliceVar(&outPorts, "exclude-outbound-ports", nil, "destination ports never captured (comma-separated)")
	f.StringSliceVar(&cidrs, "exclude-outbound-cidrs", nil, "destination networks never captured, IPv4 or IPv6 (comma-separated CIDRs or addresses)")
	f.StringSliceVar(&inPorts, "exclude-inbound-ports", nil, "local ports never captured inbound (comma-separated)")
	f.BoolVar(&dryRun, "dry-run", false, "print the iptables-restore input for IPv4 and IPv6 instead of applying it")
	f.BoolVar(&clean, "clean", false, "remove every METAMESH_* chain and the jumps into them, nothing else")
	f.StringVar(&backend, "backend", string(iptables.Auto), "iptables back end: auto (the one holding rules in the namespace, else the system's default), nft or legacy")
	return cmd
}

// parsePorts reads a list of ports.
func parsePorts(flag string, list []string) ([]uint16, error) {
	var out []uint16
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("%s: %q is not a port (1-65535)", flag, s)
		}
		out = append(out, uint16(p))
	}
	return out, nil
}

// parseCIDRs reads a list of networks; a bare address is a network of one.
func parseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("--exclude-outbound-cidrs: %q is neither a CIDR nor an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}
