package registry

import (
	"strings"
	"testing"
)

// validLabel is Kubernetes' rule for label values (and unprefixed names):
// at most 63 characters, alphanumerics at both ends, '-', '_' and '.'
// inside.
func validLabel(s string) bool {
	if s == "" {
		return true
	}
	if s == RegistryLabel {
		return true
	}
	if len(s) > 63 || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func TestLabelValue(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct{ in, want string }{
		{"1.0.0", "1.0.0"},
		{"batch", "batch"},
		{"", ""},
		{"a,b,c", "a_b_c"},
		{"a, b", "a_b"},
		{"-x-", "x"},
		{"..", ""},
		{"zookeeper://127.0.0.1:2181/dubbo", "zookeeper_127.0.0.1_2181_dubbo"},
		{"héllo", "h_llo"},
		{long, strings.Repeat("a", 54) + "-"},
	}
	for _, tt := range tests {
		got := LabelValue(tt.in)
		if !validLabel(got) {
			t.Errorf("LabelValue(%q) = %q, not a valid label value", tt.in, got)
		}
		if tt.in == long {
			if len(got) != 63 || !strings.HasPrefix(got, tt.want) {
				t.Errorf("LabelValue(70 a) = %q, want 54 a, '-' and 8 hex digits", got)
			}
			if LabelValue(long+"b") == got {
				t.Errorf("two long values map to the same label %q", got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("LabelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLabels(t *testing.T) {
	p := Provider{Registry: "etcd://h:2379", Params: map[string]string{
		"version": "1.0.0", "group": "batch", "timestamp": "1", "pid": "2", "token": "s3cret",
		"a b": "exact loses to", "a_b": "exact", "-": "dropped",
	}}
	got := Labels(p)
	want := map[string]string{"version": "1.0.0", "group": "batch", "a_b": "exact", RegistryLabel: "etcd_h_2379"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}
