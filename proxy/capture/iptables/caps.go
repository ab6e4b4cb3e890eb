package iptables

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets.
const capNetAdmin = 12

// ErrNoNetAdmin is returned, before anything is changed, by a process
// without the NET_ADMIN capability.
var ErrNoNetAdmin = errors.New("iptables: this process lacks the NET_ADMIN capability, which changing a network namespace's iptables rules needs " +
	"(an init container gets it with securityContext.capabilities.add: [NET_ADMIN, NET_RAW]; NET_RAW is for the legacy back end)")

// checkNetAdmin returns ErrNoNetAdmin when the effective capabilities in
// statusFile (/proc/self/status, or another process's) lack NET_ADMIN.
// Knowing that up front gives a clear error instead of whichever one the
// iptables tools print.
func checkNetAdmin(statusFile string) error {
	f, err := os.Open(statusFile)
	if err != nil {
		return fmt.Errorf("iptables: capabilities: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		hex, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("iptables: capabilities: CapEff %q: %w", hex, err)
		}
		if caps&(1<<capNetAdmin) == 0 {
			return ErrNoNetAdmin
		}
		return nil
	}
	return fmt.Errorf("iptables: capabilities: no CapEff line in %s", statusFile)
}
