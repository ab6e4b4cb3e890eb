package xds

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
)

// deltaStream is a delta ADS stream. Per type it keeps a reference to the
// table its proxy holds (or was last sent): what a push sends is that
// table's diff to the new one, computed once for every stream holding the
// same table, so per-resource versions are never copied per stream.
type deltaStream struct {
	*stream
	gs    discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer
	types [4]deltaType
	first *slot // for its first work, held until settled
}

type deltaType struct {
	subscribed bool
	wildcard   bool
	names      map[string]bool // subscribed by name
	added      []string        // names subscribed since the last response: sent even if unchanged
	full       bool            // send every resource (the proxy became a wildcard subscriber)
	// have is the table the proxy holds (only its names, unless
	// wildcard), or nil before the first response: then initial is what
	// it said it has (initial_resource_versions as they came, resume.go;
	// no records: nothing).
	have    *table
	initial initialVersions
	version string // of the last response
	nonce   string
}

func (ds *deltaStream) handle(req *deltaRequest) error {
	if err := ds.attach(req.GetNode()); err != nil {
		return err
	}
	i, ok := typeIndex(req.GetTypeUrl())
	if !ok {
		ds.s.log.Debug("request for a type not served, ignored", zap.String("node", ds.node), zap.String("type", req.GetTypeUrl()))
		return nil
	}
	t := &ds.types[i]
	// A delta ACK or NACK carries no version: it is the one sent with the
	// nonce it names.
	switch nonce := req.GetResponseNonce(); {
	case nonce == "":
	case nonce != t.nonce:
		if req.GetErrorDetail() != nil {
			ds.s.nacked(ds.node, req.GetTypeUrl(), "", req.GetErrorDetail().GetMessage())
		}
	case req.GetErrorDetail() != nil:
		ds.answered(i)
		ds.s.nacked(ds.node, req.GetTypeUrl(), t.version, req.GetErrorDetail().GetMessage())
	default:
		ds.answered(i)
		ds.s.acked(ds.node, req.GetTypeUrl(), t.version)
	}
	if !t.subscribed {
		t.subscribed = true
		// No names on the first request: a wildcard subscription.
		t.wildcard = len(req.GetResourceNamesSubscribe()) == 0
		t.initial = req.initial
	} else {
		req.initial.release()
	}
	for _, n := range req.GetResourceNamesSubscribe() {
		switch {
		case n == "*":
			t.full = t.full || (!t.wildcard && t.have != nil)
			t.wildcard = true
		case !t.names[n]:
			if t.names == nil {
				t.names = map[string]bool{}
			}
			t.names[n] = true
			t.added = append(t.added, n)
		}
	}
	for _, n := range req.GetResourceNamesUnsubscribe() {
		if n == "*" {
			t.wildcard = false
		}
		delete(t.names, n)
	}
	return nil
}

// flush sends, in type order, what the proxy lacks of vw's tables: the
// resources added or changed and the names removed.
func (ds *deltaStream) flush(vw *view) error {
	defer func() {
		if ds.settled() {
			ds.first.release()
		}
	}()
	var out []*tableDiff
	var types []int
	var bytes int64
	for i := range ds.types {
		t, tb := &ds.types[i], vw.tables[i]
		if !t.subscribed || (t.have == tb && len(t.added) == 0 && !t.full) {
			continue
		}
		newProxy := t.have == nil && t.initial.records == nil
		// shared: the diff is the table's own, marshaled once for every
		// stream it goes to (admission counts only what is this
		// stream's alone).
		var d *tableDiff
		shared := true
		switch {
		case newProxy || t.full:
			d = tb.whole
		case t.have == nil:
			d, shared = tb.diffFromRecords(t.initial), false
		case t.have.version == tb.version:
			d, shared = tb.newDiff(nil, nil), false
		default:
			d = tb.diffFrom(t.have)
		}
		if !t.wildcard {
			d, shared = t.subscribedOnly(d, tb), false
		}
		// A proxy new to the stream gets a response of every type, even
		// an empty one: it then knows it has the whole of that type.
		if len(d.changed) == 0 && len(d.removed) == 0 && !newProxy {
			t.initial.release()
			t.have, t.added, t.full = tb, nil, false
			continue
		}
		out = append(out, d)
		types = append(types, i)
		if !shared {
			bytes += d.bytes
		}
	}
	if len(out) == 0 {
		return nil
	}
	if err := ds.admit(bytes); err != nil {
		return err
	}
	for k, d := range out {
		i, t := types[k], &ds.types[types[k]]
		nonce := ds.nextNonce()
		if err := sendPrepared(ds.gs.SendMsg, d.resp, nonce); err != nil {
			return err
		}
		t.initial.release()
		t.have, t.added, t.full = vw.tables[i], nil, false
		t.version, t.nonce = vw.tables[i].version, nonce
		ds.sent(i, t.version)
	}
	return nil
}

// settled reports whether the proxy has had its first response of every
// type, or been found to need none.
func (ds *deltaStream) settled() bool {
	for i := range ds.types {
		if ds.types[i].have == nil {
			return false
		}
	}
	return true
}

// subscribedOnly keeps, of a diff, the names t subscribed to, plus the
// resources of names subscribed since the last response.
func (t *deltaType) subscribedOnly(d *tableDiff, tb *table) *tableDiff {
	var c []*discoveryv3.Resource
	var r []string
	in := map[string]bool{}
	for _, res := range d.changed {
		if t.names[res.GetName()] {
			c = append(c, res)
			in[res.GetName()] = true
		}
	}
	for _, n := range t.added {
		if i, ok := tb.index[n]; ok && t.names[n] && !in[n] {
			c = append(c, tb.delta[i])
			in[n] = true
		}
	}
	for _, n := range d.removed {
		if t.names[n] {
			r = append(r, n)
		}
	}
	return tb.newDiff(c, r)
}
