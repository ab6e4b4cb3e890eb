package cluster

import (
	"testing"
	"time"
)

// seq picks its hosts in turn.
type seq struct {
	hosts []*Host
	n     int
}

func (s *seq) Pick(string, bool) *Host {
	h := s.hosts[s.n%len(s.hosts)]
	s.n++
	return h
}

func testCluster(n int, o *Outlier) *Cluster {
	c := &Cluster{Name: "c", Outlier: o}
	p := &seq{}
	for i := range n {
		h := NewHost(string(rune('a' + i)))
		c.Endpoints = append(c.Endpoints, Endpoint{Host: h, Weight: 1})
		p.hosts = append(p.hosts, h)
	}
	c.LB = p
	return c
}

func TestOutlierEjectsAndReadmits(t *testing.T) {
	o := Outlier{ConsecutiveErrors: 3, BaseEjectionTime: 50 * time.Millisecond, MaxEjectionPercent: 50}.WithDefaults()
	c := testCluster(2, &o)
	bad := c.Endpoints[0].Host
	for i := range 2 {
		if c.Report(bad, false) {
			t.Fatalf("ejected after %d errors, want 3", i+1)
		}
	}
	c.Report(bad, true) // a success resets the count
	for range 2 {
		c.Report(bad, false)
	}
	if !c.Report(bad, false) {
		t.Fatal("not ejected after 3 consecutive errors")
	}
	for i := range 10 {
		if h := c.Pick("", false); h == bad {
			t.Fatalf("pick %d chose the ejected host", i)
		}
	}
	time.Sleep(60 * time.Millisecond)
	seen := false
	for range 4 {
		seen = seen || c.Pick("", false) == bad
	}
	if !seen {
		t.Fatal("the host was not readmitted after its ejection time")
	}
	if bad.Ejections() != 1 {
		t.Fatalf("ejections = %d, want 1", bad.Ejections())
	}
	// A second ejection lasts twice as long.
	for range 3 {
		c.Report(bad, false)
	}
	until := bad.EjectedUntil(time.Now())
	if d := time.Until(until); d < 80*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("second ejection lasts %v, want 2 × 50ms", d)
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	o := Outlier{ConsecutiveErrors: 1, MaxEjectionPercent: 50}.WithDefaults()
	c := testCluster(4, &o)
	ejected := 0
	for _, e := range c.Endpoints {
		if c.Report(e.Host, false) {
			ejected++
		}
	}
	if ejected != 2 {
		t.Fatalf("%d of 4 hosts ejected at 50%%, want 2", ejected)
	}
	// With every pickable host ejected... here two remain, and Pick
	// only returns those.
	for range 8 {
		if h := c.Pick("", false); !h.EjectedUntil(time.Now()).IsZero() {
			t.Fatalf("picked ejected host %s", h.Addr)
		}
	}
	// One host may always be ejected, whatever the percentage.
	o1 := Outlier{ConsecutiveErrors: 1, MaxEjectionPercent: 10}.WithDefaults()
	c1 := testCluster(2, &o1)
	if !c1.Report(c1.Endpoints[0].Host, false) || c1.Report(c1.Endpoints[1].Host, false) {
		t.Fatal("want exactly one of two hosts ejected at 10%")
	}
}

func TestOutlierAllEjectedStillPicks(t *testing.T) {
	o := Outlier{ConsecutiveErrors: 1, MaxEjectionPercent: 100}.WithDefaults()
	c := testCluster(2, &o)
	for _, e := range c.Endpoints {
		c.Report(e.Host, false)
	}
	if c.Pick("", false) == nil {
		t.Fatal("no host picked with every host ejected: want the balancer's choice")
	}
	var none *Cluster
	if none.Report(c.Endpoints[0].Host, false) {
		t.Fatal("a nil cluster ejected a host")
	}
}
