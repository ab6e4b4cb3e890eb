package iptables

import (
	"bufio"
	"strings"
)

// state is what of ours a namespace's nat table holds, read from
// iptables-save.
type state struct {
	// chains are our chains, in the order iptables-save lists them.
	chains []string
	// jumps are the rules (arguments of -A, as iptables-save prints them)
	// of other chains that jump into ours: the rules Clean deletes with -D.
	jumps []string
}

// parseState reads the nat table of iptables-save output. Only the *nat
// section is looked at; a rule counts as a jump into ours when its target
// (-j or -g) is one of our chains and it is not in one of ours.
func parseState(save string) state {
	var s state
	inNat := false
	sc := bufio.NewScanner(strings.NewReader(save))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "*"):
			inNat = line == "*nat"
		case !inNat:
		case strings.HasPrefix(line, ":"+ChainPrefix):
			name, _, _ := strings.Cut(line[1:], " ")
			s.chains = append(s.chains, name)
		case strings.HasPrefix(line, "-A "):
			rule := line[len("-A "):]
			chain, _, _ := strings.Cut(rule, " ")
			if !strings.HasPrefix(chain, ChainPrefix) && targetsOurs(rule) {
				s.jumps = append(s.jumps, rule)
			}
		}
	}
	return s
}

func targetsOurs(rule string) bool {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		if (f[i] == "-j" || f[i] == "-g") && strings.HasPrefix(f[i+1], ChainPrefix) {
			return true
		}
	}
	return false
}

// ruleCount counts the rules of ours in iptables-save output: in our
// chains and jumps into them. For tests and logs.
func ruleCount(save string) int {
	s := parseState(save)
	n := len(s.jumps)
	sc := bufio.NewScanner(strings.NewReader(save))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "-A "+ChainPrefix) {
			n++
		}
	}
	return n
}
