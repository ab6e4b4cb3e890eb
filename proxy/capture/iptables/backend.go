package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Backend is the kernel interface the iptables tools drive. Debian's
// iptables package ships both; a namespace should use one, since rules
// added through the other are a second, independent set.
type Backend string

// The backends. Auto picks, per family, the one that already holds rules
// in the namespace (the one its CNI or runtime used), else the system's
// default iptables (Debian's alternatives: nft).
const (
	Auto   Backend = "auto"
	NFT    Backend = "nft"
	Legacy Backend = "legacy"
)

// ParseBackend reads a --backend value.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case Auto, NFT, Legacy:
		return b, nil
	}
	return "", fmt.Errorf("iptables: backend %q: want auto, nft or legacy", s)
}

// tools are the save and restore commands of one family and backend.
type tools struct {
	save, restore string
	backend       Backend // Auto: the system's default, whichever it is
}

// toolsFor returns the commands for f and b, which must be installed.
func toolsFor(f Family, b Backend) (tools, error) {
	base := "iptables"
	if f == IPv6 {
		base = "ip6tables"
	}
	t := tools{save: base + "-save", restore: base + "-restore", backend: b}
	if b != Auto {
		t.save = base + "-" + string(b) + "-save"
		t.restore = base + "-" + string(b) + "-restore"
	}
	for _, name := range []string{t.save, t.restore} {
		if _, err := exec.LookPath(name); err != nil {
			return t, fmt.Errorf("iptables: %s not found (install the iptables package): %w", name, err)
		}
	}
	return t, nil
}

// detect picks the tools for f when the backend is Auto: the backend whose
// tables hold more rules, nft on a tie between two non-empty sets, and the
// system's default tools when neither variant is installed or both are
// empty.
func detect(ctx context.Context, f Family) (tools, error) {
	nft, errN := toolsFor(f, NFT)
	legacy, errL := toolsFor(f, Legacy)
	if errN != nil || errL != nil {
		return toolsFor(f, Auto)
	}
	outN, errN := run(ctx, nft.save, "")
	outL, errL := run(ctx, legacy.save, "")
	if errN != nil && errL != nil {
		return tools{}, errors.Join(errN, errL)
	}
	n, l := countRules(outN), countRules(outL)
	switch {
	case errL == nil && l > n:
		return legacy, nil
	case errN == nil && n > 0:
		return nft, nil
	}
	return toolsFor(f, Auto)
}

// countRules counts the rules in iptables-save output.
func countRules(save string) int {
	n := 0
	for _, line := range strings.Split(save, "\n") {
		if strings.HasPrefix(line, "-A ") {
			n++
		}
	}
	return n
}

// run runs name with stdin and returns its stdout, or an error with its
// stderr.
func run(ctx context.Context, name, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return out.String(), fmt.Errorf("iptables: %s: %s", name, msg)
	}
	return out.String(), nil
}
