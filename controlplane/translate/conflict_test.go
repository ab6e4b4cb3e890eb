package translate

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// created is an object's metadata created at second sec of a fixed day (0:
// no creationTimestamp).
func created(ns, name string, sec int) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name}
	if sec > 0 {
		m.CreationTimestamp = metav1.NewTime(time.Date(2024, 1, 1, 0, 0, sec, 0, time.UTC))
	}
	return m
}

func entry(m metav1.ObjectMeta, host string, port int, proto string) *v1alpha1.ServiceEntry {
	return &v1alpha1.ServiceEntry{ObjectMeta: m, Spec: v1alpha1.ServiceEntrySpec{
		Hosts: []v1alpha1.Host{v1alpha1.Host(host)},
		Ports: []v1alpha1.ServicePort{{Number: v1alpha1.PortNumber(port), Name: "p", Protocol: v1alpha1.Name(proto)}},
	}}
}

func router(m metav1.ObjectMeta, host string) *v1alpha1.MetaRouter {
	return &v1alpha1.MetaRouter{ObjectMeta: m, Spec: v1alpha1.MetaRouterSpec{
		Hosts:  []v1alpha1.Host{v1alpha1.Host(host)},
		Routes: []v1alpha1.MetaRoute{{Name: "all", Route: []v1alpha1.WeightedDestination{{Destination: v1alpha1.Destination{Host: v1alpha1.Host(host)}}}}},
	}}
}

func policy(m metav1.ObjectMeta, host string) *v1alpha1.DestinationPolicy {
	return &v1alpha1.DestinationPolicy{ObjectMeta: m, Spec: v1alpha1.DestinationPolicySpec{Host: v1alpha1.Host(host)}}
}

// TestConflictsOldestWins: of two objects claiming the same thing, the
// older (creationTimestamp, then namespace/name) keeps it and the newer is
// refused, naming the older; each case is built so that namespace/name
// order alone would pick the other one, where it can.
func TestConflictsOldestWins(t *testing.T) {
	base := entry(created("default", "greetings", 1), "org.example.Greetings", 20880, "dubbo")
	cases := []struct {
		name       string
		in         Input
		key, field string // the refused object and claim
		holder     string // the object in force
		reason     string // part of the reason
	}{{
		name: "ServiceEntry host",
		in:   Input{ServiceEntries: []*v1alpha1.ServiceEntry{base, entry(created("default", "a-copy", 2), "org.example.Greetings", 20881, "dubbo")}},
		key:  "ServiceEntry/default/a-copy", field: "spec.hosts[0]", holder: "ServiceEntry/default/greetings",
		reason: "already defined by ServiceEntry default/greetings",
	}, {
		name: "ServiceEntry port protocol",
		in: Input{ServiceEntries: []*v1alpha1.ServiceEntry{
			entry(created("b", "thrift", 1), "thrift.B", 9090, "thrift"), entry(created("a", "dubbo", 2), "dubbo.A", 9090, "dubbo"),
		}},
		key: "ServiceEntry/a/dubbo", field: "spec.ports[0]", holder: "ServiceEntry/b/thrift",
		reason: "port 9090 already carries protocol thrift (thrift.B of ServiceEntry b/thrift)",
	}, {
		name: "ServiceEntry port of a one-service protocol",
		in: Input{ServiceEntries: []*v1alpha1.ServiceEntry{
			entry(created("default", "redis-z", 1), "redis.Z", 6379, "redis"), entry(created("default", "redis-a", 2), "redis.A", 6379, "redis"),
		}},
		key: "ServiceEntry/default/redis-a", field: "spec.ports[0]", holder: "ServiceEntry/default/redis-z",
		reason: "port 6379 already carries redis service redis.Z (ServiceEntry default/redis-z)",
	}, {
		name: "DestinationPolicy host",
		in: Input{ServiceEntries: []*v1alpha1.ServiceEntry{base}, DestinationPolicies: []*v1alpha1.DestinationPolicy{
			policy(created("default", "z-old", 1), "org.example.Greetings"), policy(created("default", "a-new", 2), "org.example.Greetings"),
		}},
		key: "DestinationPolicy/default/a-new", field: "spec.host", holder: "DestinationPolicy/default/z-old",
		reason: "already has DestinationPolicy default/z-old",
	}, {
		name: "MetaRouter host",
		in: Input{ServiceEntries: []*v1alpha1.ServiceEntry{base}, MetaRouters: []*v1alpha1.MetaRouter{
			router(created("default", "greetings", 1), "org.example.Greetings"), router(created("default", "broken", 2), "org.example.Greetings"),
		}},
		key: "MetaRouter/default/broken", field: "spec.hosts[0]", holder: "MetaRouter/default/greetings",
		reason: "already routed by MetaRouter default/greetings",
	}, {
		name: "MetaRouter host, same creation second: namespace/name decides",
		in: Input{ServiceEntries: []*v1alpha1.ServiceEntry{base}, MetaRouters: []*v1alpha1.MetaRouter{
			router(created("default", "greetings", 1), "org.example.Greetings"), router(created("default", "broken", 1), "org.example.Greetings"),
		}},
		key: "MetaRouter/default/greetings", field: "spec.hosts[0]", holder: "MetaRouter/default/broken",
		reason: "already routed by MetaRouter default/broken",
	}, {
		name: "ApplicationProtocol named like a built-in",
		in: Input{ApplicationProtocols: []*v1alpha1.ApplicationProtocol{{
			ObjectMeta: created("", "redis", 1), Spec: v1alpha1.ApplicationProtocolSpec{Codec: "dubbo"},
		}}},
		key: "ApplicationProtocol//redis", field: "metadata.name", holder: "",
		reason: `"redis" is a built-in protocol`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Either order of the slices gives the same verdict.
			for _, in := range []*Input{&c.in, reverseAll(&c.in)} {
				got := Conflicts(in, Options{})
				if len(got) != 1 {
					t.Fatalf("conflicts %+v, want one on %s", got, c.key)
				}
				if g := got[0]; g.Key != c.key || g.Field != c.field || g.Holder != c.holder || !strings.Contains(g.Reason, c.reason) {
					t.Errorf("conflict %+v, want %s %s held by %q: ...%s...", g, c.key, c.field, c.holder, c.reason)
				}
				// The status says the same, with reason Conflict.
				acc := Translate(in, Options{}).Status[c.key].Get(v1alpha1.ConditionAccepted)
				if acc.Status != metav1.ConditionFalse || acc.Reason != v1alpha1.ReasonConflict || !strings.Contains(acc.Message, c.field+": ") || !strings.Contains(acc.Message, c.reason) {
					t.Errorf("%s Accepted = %s %s: %s", c.key, acc.Status, acc.Reason, acc.Message)
				}
				if c.holder == "" {
					continue
				}
				if acc := Translate(in, Options{}).Status[c.holder].Get(v1alpha1.ConditionAccepted); acc.Status != metav1.ConditionTrue {
					t.Errorf("the object in force, %s, is not accepted: %s", c.holder, acc.Message)
				}
			}
		})
	}
}

// TestConflictsOlder: Options.Older replaces creationTimestamp order (file
// mode ranks the objects an edit left alone first).
func TestConflictsOlder(t *testing.T) {
	in := &Input{ServiceEntries: []*v1alpha1.ServiceEntry{
		entry(created("default", "new", 1), "h.A", 1, "dubbo"),
		entry(created("default", "settled", 2), "h.A", 2, "dubbo"),
	}}
	settledFirst := func(kind string, a, b *metav1.ObjectMeta) int {
		rank := func(m *metav1.ObjectMeta) int {
			if kind == v1alpha1.KindServiceEntry && m.Name == "settled" {
				return 0
			}
			return 1
		}
		return rank(a) - rank(b)
	}
	got := Conflicts(in, Options{Older: settledFirst})
	if len(got) != 1 || got[0].Key != "ServiceEntry/default/new" || got[0].Holder != "ServiceEntry/default/settled" {
		t.Errorf("with Older: %+v, want new refused, settled in force", got)
	}
	got = Conflicts(in, Options{})
	if len(got) != 1 || got[0].Key != "ServiceEntry/default/settled" {
		t.Errorf("without Older (by creationTimestamp): %+v, want settled refused", got)
	}
}

func reverseAll(in *Input) *Input {
	return &Input{
		ServiceEntries:       reversed(in.ServiceEntries),
		DestinationPolicies:  reversed(in.DestinationPolicies),
		MetaRouters:          reversed(in.MetaRouters),
		ApplicationProtocols: reversed(in.ApplicationProtocols),
	}
}

// An ApplicationProtocol that names a built-in protocol's own codec (as
// Aeraki's ApplicationProtocol for dubbo does) says nothing new: it is
// accepted, not a conflict.
func TestApplicationProtocolRestatingBuiltin(t *testing.T) {
	in := Input{ApplicationProtocols: []*v1alpha1.ApplicationProtocol{{
		ObjectMeta: created("", "dubbo", 1), Spec: v1alpha1.ApplicationProtocolSpec{Codec: "dubbo"},
	}}}
	if got := Conflicts(&in, Options{}); len(got) != 0 {
		t.Fatalf("conflicts %+v for an ApplicationProtocol restating the built-in dubbo", got)
	}
}
