package proxy

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/router"
	"github.com/metamesh/metamesh/proxy/tracing"
)

// request is one request on its way through the proxy, from its decoded
// frame to its reply. handle makes one per frame and route takes it
// through its steps (resolve, authorize, match, admit, pick, forward:
// route.go), each of
// which fills in what it decided or ends the request with a local reply.
// Everything about a request lives here, never on the connection; what
// outlives the read loop's turn (an upstream call, an exchange) copies
// what it needs.
type request struct {
	d   *downstream
	m   *protocols.Message
	seq uint64            // its reply slot (pipelined order, or a split part's)
	pin protocols.Verdict // what its session asks of its upstream connection

	cfg      *config.Listener // the listener's config in force
	snap     *config.Config
	service  string // the service it names
	label    string // its service label: "*" for a service no route names
	ob       observers
	traceSet []protocols.Header // trace context to set on the forwarded frame

	table     *router.Table       // the listener's route table in force
	vh        *router.VirtualHost // its service's virtual host in table
	rt        *router.Route
	routeName string // its route's name, for labels ("pinned" on a client's own connection)
	cname     string
	cl        *cluster.Cluster
	key       string // the value of the route's hash attribute, if hasKey
	hasKey    bool
	host      *cluster.Host
	delay     bool // a fault delay holds it before it is sent
}

// local is how a step ends a request that the proxy answers itself: with
// the codec's error reply for reason, or, for a fault abort with a status
// (abort ≠ 0) and a codec that numbers its statuses, with that status.
type local struct {
	reason protocols.Reason
	abort  uint32
	text   string
	// raw is a reply of the protocol's own to send as it is (Redis
	// Cluster's CROSSSLOT), accounted as status "error".
	raw []byte
}

func (r *request) oneway() bool { return r.m.Kind == protocols.KindOneway }

// answer ends r with the proxy's own reply.
func (r *request) answer(out *local) {
	d, m := r.d, r.m
	if rl, ok := d.session.(protocols.RefusalListener); ok {
		rl.Refused(d.pinned != nil)
	}
	route, cluster := r.routeName, r.cname
	if out.raw != nil {
		d.reply(r.seq, &d.batch, func(dst []byte) []byte { return append(dst, out.raw...) })
		d.account(m, r.ob, r.label, route, cluster, "", "error", 0)
		return
	}
	if out.abort != 0 {
		if sr, ok := d.codec.(protocols.StatusReplier); ok {
			if !r.oneway() {
				d.reply(r.seq, &d.batch, func(dst []byte) []byte {
					return d.ownReply(dst, m.ID, func(dst []byte) []byte { return sr.StatusReply(dst, m, out.abort, out.text) })
				})
			}
			d.account(m, r.ob, r.label, route, "", "", "fault_abort", 0)
			return
		}
	}
	d.srv.metrics.LocalReplies.WithLabelValues(d.codecName, out.reason.String()).Inc()
	if r.oneway() {
		d.srv.log.Debug("dropping a oneway request", zap.String("reason", out.text))
	} else {
		d.reply(r.seq, &d.batch, func(dst []byte) []byte { return d.errorReply(dst, m, out.reason, out.text) })
	}
	d.account(m, r.ob, r.label, route, cluster, "", out.reason.String(), 0)
}

// account ends the accounting of one request, whatever answered it (an
// upstream at upstream, or the proxy: ""): its series (count and
// latency), its access log line and its span. Every outcome of every
// request, on every path, ends here.
func (d *downstream) account(req *protocols.Message, ob observers, service, route, cluster, upstream, status string, respBytes int) {
	d.srv.metrics.Series(d.codecName, service, route, cluster).Done(status, time.Since(ob.start))
	if ob.log != nil {
		d.access(ob.log, req, service, route, cluster, upstream, status, ob.start, respBytes)
	}
	if ob.span != nil {
		tracing.End(ob.span, route, cluster, upstream, status)
	}
}

// fail is the local outcome of a route step that found no way on.
func fail(reason protocols.Reason, format string, args ...any) *local {
	return &local{reason: reason, text: fmt.Sprintf(format, args...)}
}
