package proxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// forward sends r to its host. A route with a timeout or retries (or a
// fault delay) hands r to an exchange, which follows its tries; any
// other request becomes one upstream call whose outcome comes back to
// Respond or Fail. A host that refuses the connection is left for another
// at once (connectFailed); when nothing can be sent, r is answered here.
func (r *request) forward() {
	d, m, rt := r.d, r.m, r.rt
	// A streamed request (its first part: relay_request.go) is sent once,
	// and not mirrored: its later parts go to one upstream stream.
	stream := m.More
	if len(rt.Mirrors) > 0 && !stream {
		// Copies go out after the request (below), from the read loop's
		// batch: the request's bytes are written first.
		defer d.mirror(m, rt, r.snap, r.label)
	}
	set := rt.RequestSet
	if len(r.traceSet) > 0 {
		set = append(append(make([]protocols.Header, 0, len(set)+len(r.traceSet)), set...), r.traceSet...)
	}
	oneway := r.oneway()
	timeout := r.timeout()
	if !oneway && r.pin == protocols.Forward && (rt.HasPolicies() || r.delay || timeout > 0) {
		ex := newExchange(r, set, timeout)
		if stream {
			ex.streamRequest()
		}
		if r.delay {
			host := r.host
			time.AfterFunc(rt.Fault.Delay, func() {
				var b wire.Batch
				ex.start(host, &b)
				b.Flush()
			})
			return
		}
		ex.start(r.host, &d.batch)
		return
	}

	c := upstream.NewCall(m)
	c.Set, c.ResponseSet, c.Host, c.Receiver = set, rt.ResponseSet, r.host, d
	c.Service, c.Route, c.ClusterName, c.Start, c.Seq = r.label, rt.Name, r.cname, r.ob.start, r.seq
	c.Affinity, c.RequestStream = d.affinity, stream
	if !oneway {
		c.Cluster, c.Log, c.Span = r.cl, r.ob.log, r.ob.span
		d.begin(c)
	}
	host := r.host
	if stream {
		// Before it is sent: its answer may come (and drop it) at once.
		d.relays.add(m.ID, c, nil)
	}
	var err error
	for failedOver := false; ; failedOver = true {
		if r.pin == protocols.Pin || r.pin == protocols.Once || r.pin == protocols.Stream {
			err = d.pinAndSend(c, r.cl, r.pin)
		} else {
			err = d.send(c, r.cl, &d.batch)
		}
		if err == nil || !errors.Is(err, upstream.ErrConnect) {
			break
		}
		next := d.connectFailed(r.cl, host, r.key, r.hasKey)
		if next == nil || failedOver {
			break
		}
		if !oneway {
			host.End()
			next.Begin()
		}
		host, c.Host = next, next
	}
	if err != nil {
		if stream {
			d.relays.drop(m.ID, c)
		}
		if !oneway {
			d.end(c)
		}
		c.Release()
		r.answer(&local{reason: sendFailure(err), text: fmt.Sprintf("metamesh: route %s: cluster %s: %v", rt.Name, r.cname, err)})
		return
	}
	if oneway {
		d.account(m, r.ob, r.label, rt.Name, r.cname, host.Addr, "oneway", 0)
	}
}

// timeout is how long r may wait for its reply: its route's timeout, or
// the request's own (a codec's Deadliner: Triple's grpc-timeout) when
// that is smaller; 0: neither sets one.
func (r *request) timeout() time.Duration {
	t := r.rt.Timeout
	if dl, ok := r.d.codec.(protocols.Deadliner); ok {
		if own := dl.RequestTimeout(r.m); own > 0 && (t == 0 || own < t) {
			t = own
		}
	}
	return t
}
