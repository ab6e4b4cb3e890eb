package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/metamesh/metamesh/controlplane/ca"
)

// The identities of the two proxies of the -mtls runs.
const (
	benchClientID = "spiffe://cluster.local/ns/bench/sa/client"
	benchServerID = "spiffe://cluster.local/ns/bench/sa/server"
)

// identityArgs makes a mesh root and a workload certificate for each of
// ids in dir, returning each one's --identity-* flags.
func identityArgs(dir string, ids ...string) (map[string][]string, error) {
	certPEM, keyPEM, err := ca.Generate("metamesh-bench root")
	if err != nil {
		return nil, err
	}
	root, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	rootFile := filepath.Join(dir, "root.crt")
	if err := os.WriteFile(rootFile, certPEM, 0o600); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for i, id := range ids {
		c, err := root.IssueWorkload(spiffeid.RequireFromString(id), time.Hour)
		if err != nil {
			return nil, err
		}
		certFile, keyFile, err := writePair(dir, fmt.Sprintf("identity-%d", i), c)
		if err != nil {
			return nil, err
		}
		out[id] = []string{"--identity-cert", certFile, "--identity-key", keyFile, "--identity-roots", rootFile}
	}
	return out, nil
}

func writePair(dir, name string, c *tls.Certificate) (string, string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// twoProxies measures the load through two proxies, as a consumer's
// sidecar and a provider's: a front proxy on cfg's listener forwarding to
// a back proxy in front of the server, with mutual TLS between them when
// mtls (the back one STRICT), plaintext otherwise. Both proxies' CPU is
// the run's proxy CPU.
func twoProxies(ctx context.Context, o options, w *workload, dir, name string, cfg bootstrapConfig, mtls bool, server *child) (*measurement, error) {
	ids, err := identityArgs(dir, benchClientID, benchServerID)
	if err != nil {
		return nil, err
	}
	back, front := cfg, cfg
	if back.Listen, err = freeAddr(); err != nil {
		return nil, err
	}
	if front.Listen, err = freeAddr(); err != nil {
		return nil, err
	}
	front.Upstream = back.Listen
	var backArgs, frontArgs []string
	if mtls {
		back.MTLSListener, front.MTLSUpstream = true, benchServerID
		backArgs, frontArgs = ids[benchServerID], ids[benchClientID]
	}
	suffix := map[bool]string{true: "-mtls", false: "-plain"}[mtls]
	bp, err := startProxy(ctx, o, dir, "proxy-back"+suffix, back, "", backArgs...)
	if err != nil {
		return nil, err
	}
	defer bp.stop(o.stop)
	fp, err := startProxy(ctx, o, dir, "proxy-front"+suffix, front, "", frontArgs...)
	if err != nil {
		return nil, err
	}
	defer fp.stop(o.stop)
	m, err := measure(ctx, o, w, name, front.Listen, map[string]*child{"server": server, "proxy": fp, "proxy2": bp})
	if err != nil {
		return nil, err
	}
	m.cpu["proxy"] += m.cpu["proxy2"]
	m.syscalls["proxy"] += m.syscalls["proxy2"]
	m.switches["proxy"] += m.switches["proxy2"]
	if m.res.Errors > 0 {
		m.proxyLog = fp.logTail() + bp.logTail()
	}
	for _, c := range []*child{fp, bp} {
		if !c.alive() {
			return m, fmt.Errorf("%s exited during the benchmark: %v%s", c.name, c.waitErr, c.logTail())
		}
	}
	return m, nil
}
