package iptables

import (
	"context"
	"fmt"
	"os"
)

// Options choose how Apply and Clean reach the namespace they run in.
type Options struct {
	// Backend selects the iptables back end (Auto if empty).
	Backend Backend
	// IPv6 says whether to handle IPv6 too; nil means when the kernel has
	// IPv6 in this namespace (if_inet6 exists in the
	// calling thread's /proc/thread-self/net: a test may have moved just
	// that thread into the namespace).
	IPv6 *bool
}

// Result says what Apply or Clean did in one family.
type Result struct {
	Family Family
	// Tool is the restore command used, e.g. iptables-nft-restore.
	Tool string
	// Rules counts the rules of ours after the change.
	Rules int
}

// Apply installs c's rules in the calling thread's network namespace,
// replacing any of ours already there, one atomic iptables-restore per
// family. Running it twice leaves one set of rules.
func Apply(ctx context.Context, c Config, o Options) ([]Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return each(ctx, o, func(f Family, have state) string { return script(&c, f, have) })
}

// Clean removes every chain of ours and every jump into them from the
// calling thread's network namespace, and nothing else.
func Clean(ctx context.Context, o Options) ([]Result, error) {
	return each(ctx, o, func(_ Family, have state) string { return cleanScript(have) })
}

// each runs, for every family, the restore input build makes from the
// namespace's current state.
func each(ctx context.Context, o Options, build func(Family, state) string) ([]Result, error) {
	if err := checkNetAdmin("/proc/thread-self/status"); err != nil {
		return nil, err
	}
	b := o.Backend
	if b == "" {
		b = Auto
	}
	fams := []Family{IPv4}
	if o.IPv6 == nil && hasIPv6() || o.IPv6 != nil && *o.IPv6 {
		fams = append(fams, IPv6)
	}
	var results []Result
	for _, f := range fams {
		var t tools
		var err error
		if b == Auto {
			t, err = detect(ctx, f)
		} else {
			t, err = toolsFor(f, b)
		}
		if err != nil {
			return results, err
		}
		save, err := run(ctx, t.save, "", "-t", "nat")
		if err != nil {
			return results, err
		}
		if in := build(f, parseState(save)); in != "" {
			if _, err := run(ctx, t.restore, in, "--noflush"); err != nil {
				return results, fmt.Errorf("%w\ninput was:\n%s", err, in)
			}
			if save, err = run(ctx, t.save, "", "-t", "nat"); err != nil {
				return results, err
			}
		}
		results = append(results, Result{Family: f, Tool: t.restore, Rules: ruleCount(save)})
	}
	return results, nil
}

// hasIPv6 reports whether the kernel has IPv6 in this network namespace.
func hasIPv6() bool {
	_, err := os.Stat("/proc/thread-self/net/if_inet6")
	return err == nil
}
