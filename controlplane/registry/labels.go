package registry

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
)

// RegistryLabel is the endpoint label naming the registry an endpoint
// came from (the first, by URL, when several list it).
const RegistryLabel = "metamesh.io/registry"

// RegistryAnnotation lists, comma-separated, the registries whose
// providers a ServiceEntry's endpoints are.
const RegistryAnnotation = "metamesh.io/registry"

// skipped are provider parameters that are not labels: timestamp and pid
// change on every registration of the same process (a restart, a new
// session), not with what the provider is; token is Dubbo's call token, a
// secret that must not reach endpoint labels, config dumps or metrics.
var skipped = map[string]bool{"timestamp": true, "pid": true, "token": true}

// maxLabel is the longest label name or value (Kubernetes' limit).
const maxLabel = 63

// LabelValue maps s to a valid label value: every run of characters other
// than ASCII letters, digits, '-', '_' and '.' becomes one '_'; characters
// other than letters and digits are trimmed from both ends; a result
// longer than 63 characters is cut to 54 and ended with '-' and 8 hex
// digits of a hash of s, so that distinct long values stay distinct.
func LabelValue(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	under := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if alnum(c) || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	out := strings.TrimFunc(b.String(), func(r rune) bool { return r > 0x7f || !alnum(byte(r)) })
	if len(out) > maxLabel {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		out = strings.TrimRightFunc(out[:54], func(r rune) bool { return !alnum(byte(r)) }) + fmt.Sprintf("-%08x", h.Sum32())
	}
	return out
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Labels are the endpoint labels of a provider: each URL parameter but
// the skipped ones, name and value mapped by LabelValue. A parameter
// whose name maps to nothing is dropped; of two whose names map to the
// same label, the one whose name needed no change wins, else the first
// in order. RegistryLabel is added.
func Labels(p Provider) map[string]string {
	keys := make([]string, 0, len(p.Params))
	for k := range p.Params {
		if !skipped[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make(map[string]string, len(keys)+1)
	exact := make(map[string]bool, len(keys))
	for _, k := range keys {
		name := LabelValue(k)
		if name == "" || name == RegistryLabel || exact[name] {
			continue
		}
		if _, taken := out[name]; taken && name != k {
			continue
		}
		out[name] = LabelValue(p.Params[k])
		exact[name] = name == k
	}
	if p.Registry != "" {
		out[RegistryLabel] = LabelValue(p.Registry)
	}
	return out
}

// weight is the provider's `weight` parameter when it is a valid endpoint
// weight (1 to 1,000,000).
func weight(p Provider) (int32, bool) {
	n, err := strconv.Atoi(p.Params["weight"])
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, false
	}
	return int32(n), true
}
