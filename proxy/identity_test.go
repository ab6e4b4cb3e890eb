package proxy

import (
	"net/url"
	"testing"
)

func TestSpiffeIdentity(t *testing.T) {
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	for _, tc := range []struct {
		uris                 []*url.URL
		principal, namespace string
	}{
		{[]*url.URL{uri("spiffe://cluster.local/ns/batch/sa/reporter")}, "cluster.local/ns/batch/sa/reporter", "batch"},
		{[]*url.URL{uri("https://example.com/x"), uri("spiffe://td/ns/a/sa/b")}, "td/ns/a/sa/b", "a"},
		{[]*url.URL{uri("spiffe://td/workload/7")}, "td/workload/7", ""},
		{[]*url.URL{uri("spiffe:///ns/a/sa/b")}, "", ""},
		{nil, "", ""},
	} {
		p, ns := spiffeIdentity(tc.uris)
		if p != tc.principal || ns != tc.namespace {
			t.Errorf("spiffeIdentity(%v) = %q, %q; want %q, %q", tc.uris, p, ns, tc.principal, tc.namespace)
		}
	}
}
