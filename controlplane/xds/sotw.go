package xds

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"
)

// sotwStream is a state-of-the-world ADS stream. Per type it keeps the
// version its proxy has (or was last sent) and the names it asked for:
// every response carries a whole table, shared with every other stream.
type sotwStream struct {
	*stream
	gs    discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	types [4]sotwType
}

type sotwType struct {
	subscribed bool
	names      map[string]bool // nil: every resource (wildcard)
	// version is the version the proxy has or was last sent: a version
	// it refused is not sent again.
	version string
	nonce   string // of the last response
	resend  bool   // the names changed: send even an unchanged version
}

func (ss *sotwStream) handle(req *discoveryv3.DiscoveryRequest) error {
	if err := ss.attach(req.GetNode()); err != nil {
		return err
	}
	i, ok := typeIndex(req.GetTypeUrl())
	if !ok {
		ss.s.log.Debug("request for a type not served, ignored", zap.String("node", ss.node), zap.String("type", req.GetTypeUrl()))
		return nil
	}
	t := &ss.types[i]
	switch nonce := req.GetResponseNonce(); {
	case nonce == "":
		if !t.subscribed {
			// What the proxy has (a reconnection): not sent again.
			t.version = req.GetVersionInfo()
		}
	case nonce != t.nonce:
		// An answer to a response older than the last: the last is on its
		// way, and its answer is the one that counts.
		if req.GetErrorDetail() != nil {
			ss.s.nacked(ss.node, req.GetTypeUrl(), "", req.GetErrorDetail().GetMessage())
		}
		return nil
	case req.GetErrorDetail() != nil:
		ss.answered(i)
		ss.s.nacked(ss.node, req.GetTypeUrl(), t.version, req.GetErrorDetail().GetMessage())
	default:
		ss.answered(i)
		ss.s.acked(ss.node, req.GetTypeUrl(), req.GetVersionInfo())
	}
	t.subscribed = true
	if names := nameSet(req.GetResourceNames()); !sameNames(names, t.names) {
		t.names, t.resend = names, true
	}
	return nil
}

// flush sends, in type order, every subscribed type whose version in vw
// the proxy does not have.
func (ss *sotwStream) flush(vw *view) error {
	var out []*prepared
	var types []int
	var bytes int64
	for i := range ss.types {
		t, tb := &ss.types[i], vw.tables[i]
		if !t.subscribed || (tb.version == t.version && !t.resend) {
			continue
		}
		// The whole table's response is marshaled once for every stream
		// it goes to: admission counts only what is this stream's alone.
		resp := tb.sotw
		if t.names != nil {
			resources, n := tb.only(t.names)
			resp = prepare(&discoveryv3.DiscoveryResponse{VersionInfo: tb.version, Resources: resources, TypeUrl: tb.typeURL})
			bytes += n
		}
		out = append(out, resp)
		types = append(types, i)
	}
	if len(out) == 0 {
		return nil
	}
	if err := ss.admit(bytes); err != nil {
		return err
	}
	for k, resp := range out {
		i, t := types[k], &ss.types[types[k]]
		nonce := ss.nextNonce()
		if err := sendPrepared(ss.gs.SendMsg, resp, nonce); err != nil {
			return err
		}
		t.version, t.nonce, t.resend = vw.tables[i].version, nonce, false
		ss.sent(i, t.version)
	}
	return nil
}

// nameSet is the set of names a request subscribes to; nil for all (no
// names, or "*").
func nameSet(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "*" {
			return nil
		}
		set[n] = true
	}
	return set
}

func sameNames(a, b map[string]bool) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for n := range a {
		if !b[n] {
			return false
		}
	}
	return true
}
