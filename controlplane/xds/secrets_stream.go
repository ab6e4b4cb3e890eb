package xds

import (
	"context"
	"errors"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/anypb"
)

// sds is a stream's SDS state: its proxy's certificate, issued for it
// alone and kept out of the shared tables. It belongs to the stream's
// goroutine, but for the proof (a TokenReview is a call to the API
// server, rate-limited in a reconnection storm), made on a goroutine of
// its own so the stream's config does not wait for it.
type sds struct {
	is   *issuer // nil: the server issues no certificates
	st   *stream
	node *corev3.Node // of the stream's first request

	subscribed bool
	names      map[string]bool // nil: both Secrets
	proving    bool            // the proof was started
	proof      chan proof      // its outcome, once
	id         spiffeid.ID     // proven; zero until then
	refused    bool            // no certificate on this stream
	cur        *issued
	wake       chan struct{} // the stream's secrets: the proof is in, or a rotation is due
	timer      *time.Timer   // wakes the stream at cur.rotateAt

	// State of the world: the version sent last and its nonce; resend
	// when the names changed.
	version, nonce string
	resend         bool
	// Delta: the versions sent by name.
	sentVersions map[string]string
}

// proof is who the proxy proved to be and its first certificate, or why
// it gets none.
type proof struct {
	id  spiffeid.ID
	cur *issued
	err error
}

func newSDS(st *stream) *sds {
	d := &sds{is: st.s.issuer, st: st, proof: make(chan proof, 1), wake: make(chan struct{}, 1)}
	st.secrets = d.wake
	return d
}

// signal wakes the stream (at most one wake-up pending).
func (d *sds) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// take routes the requests of the Secret type to handle and the others to
// next, keeping the stream's first node (its certificate request).
func take[Req interface {
	GetNode() *corev3.Node
	GetTypeUrl() string
}](d *sds, handle, next func(Req) error) func(Req) error {
	return func(req Req) error {
		if d.node == nil && req.GetNode() != nil {
			d.node = req.GetNode()
		}
		if req.GetTypeUrl() != resourcev3.SecretType {
			return next(req)
		}
		if err := d.st.attach(req.GetNode()); err != nil {
			return err
		}
		if d.is == nil {
			d.st.s.log.Debug("Secrets asked for, but this control plane issues no workload certificates", zap.String("node", d.st.node))
			return nil
		}
		return handle(req)
	}
}

// answered records the proxy's answer to the last Secret response.
func (d *sds) answered(nonce, version string, detail error) {
	switch {
	case nonce == "" || nonce != d.nonce:
	case detail != nil:
		d.st.s.nacked(d.st.node, resourcev3.SecretType, version, detail.Error())
	default:
		d.st.s.acked(d.st.node, resourcev3.SecretType, version)
	}
}

func (d *sds) handleSotw(req *discoveryv3.DiscoveryRequest) error {
	var detail error
	if req.GetErrorDetail() != nil {
		detail = errors.New(req.GetErrorDetail().GetMessage())
	}
	d.answered(req.GetResponseNonce(), d.version, detail)
	if names := nameSet(req.GetResourceNames()); !d.subscribed || !sameNames(names, d.names) {
		d.names, d.resend = names, true
	}
	d.subscribed = true
	return nil
}

func (d *sds) handleDelta(req *discoveryv3.DeltaDiscoveryRequest) error {
	var detail error
	if req.GetErrorDetail() != nil {
		detail = errors.New(req.GetErrorDetail().GetMessage())
	}
	d.answered(req.GetResponseNonce(), d.version, detail)
	if !d.subscribed {
		d.subscribed = true
		if len(req.GetResourceNamesSubscribe()) > 0 {
			d.names = map[string]bool{}
		}
	}
	for _, n := range req.GetResourceNamesSubscribe() {
		if n == "*" {
			d.names = nil
		} else if d.names != nil {
			d.names[n] = true
		}
	}
	for _, n := range req.GetResourceNamesUnsubscribe() {
		delete(d.names, n)
		delete(d.sentVersions, n)
	}
	return nil
}

// current is the proxy's certificate, issued or re-issued when due; nil
// when it gets none (not subscribed, not proven yet, or refused: logged
// and counted once).
func (d *sds) current() *issued {
	if d.is == nil || !d.subscribed || d.refused || d.st.node == "" {
		return nil
	}
	if d.id.IsZero() {
		if !d.proving {
			d.proving = true
			go d.prove(d.st.ctx, d.st.node, d.node)
			return nil
		}
		var p proof
		select {
		case p = <-d.proof:
		default:
			return nil
		}
		if p.err != nil {
			d.refuse(p.err)
			return nil
		}
		d.id, d.cur = p.id, p.cur
		d.is.log.Info("workload certificate issued", zap.String("node", d.st.node), zap.Stringer("id", p.id), zap.Time("not_after", p.cur.notAfter))
		d.arm()
	} else if !time.Now().Before(d.cur.rotateAt) {
		next, err := d.is.issue(d.csr(), d.id)
		if err != nil {
			d.is.log.Error("workload certificate not rotated; retrying in a minute", zap.String("node", d.st.node), zap.Error(err))
			d.cur.rotateAt = time.Now().Add(time.Minute)
		} else {
			d.cur = next
			d.is.log.Debug("workload certificate rotated", zap.String("node", d.st.node), zap.Stringer("id", d.id), zap.Time("not_after", next.notAfter))
		}
		d.arm()
	}
	return d.cur
}

// prove checks who the proxy of node is and issues its first
// certificate, then wakes the stream. ctx ends with the stream.
func (d *sds) prove(ctx context.Context, node string, n *corev3.Node) {
	var p proof
	p.id, p.err = d.is.prove(ctx, node)
	if p.err == nil {
		var csr []byte
		if csr, p.err = csrOf(n); p.err == nil {
			p.cur, p.err = d.is.issue(csr, p.id)
		}
	}
	d.proof <- p
	d.signal()
}

// csr is the request a certificate was issued for: the stream's node's,
// which did not change (it is checked when first issued).
func (d *sds) csr() []byte {
	csr, _ := csrOf(d.node)
	return csr
}

func (d *sds) refuse(err error) {
	d.refused = true
	reason := "csr"
	var r *refusal
	if errors.As(err, &r) {
		reason = r.reason
	}
	d.is.refused.WithLabelValues(reason).Inc()
	// A proxy that offers no proof is set up without an identity (a
	// plaintext channel, no token); one whose proof fails or names
	// another namespace or pod is worth a warning.
	level := zap.WarnLevel
	if reason == "no_proof" {
		level = zap.InfoLevel
	}
	d.is.log.Log(level, "workload certificate refused: the proxy keeps its config but gets no certificate",
		zap.String("node", d.st.node), zap.String("reason", reason), zap.Error(err))
}

// arm sets the stream's rotation timer to the current certificate's
// rotateAt: serve wakes then and the flush re-issues it.
func (d *sds) arm() {
	wait := time.Until(d.cur.rotateAt)
	if d.timer == nil {
		d.timer = time.AfterFunc(wait, d.signal)
		return
	}
	d.timer.Reset(wait)
}

// stop stops the rotation timer; the stream ended.
func (d *sds) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}

// wanted are the Secrets the proxy asked for, in name order.
func (d *sds) wanted(cur *issued) []*discoveryv3.Resource {
	var out []*discoveryv3.Resource
	for _, r := range []struct {
		name, version string
		secret        *anypb.Any
	}{{SecretRoots, d.is.rootVer, d.is.roots}, {SecretCert, cur.version, cur.secret}} {
		if d.names == nil || d.names[r.name] {
			out = append(out, &discoveryv3.Resource{Name: r.name, Version: r.version, Resource: r.secret})
		}
	}
	return out
}

// flushSotw sends the proxy its Secrets when they changed.
func (d *sds) flushSotw(gs discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	cur := d.current()
	if cur == nil {
		return nil
	}
	version := d.is.rootVer + "." + cur.version
	if version == d.version && !d.resend {
		return nil
	}
	resp := &discoveryv3.DiscoveryResponse{VersionInfo: version, TypeUrl: resourcev3.SecretType, Nonce: d.st.nextNonce()}
	for _, r := range d.wanted(cur) {
		resp.Resources = append(resp.Resources, r.Resource)
	}
	if err := gs.Send(resp); err != nil {
		return err
	}
	d.version, d.nonce, d.resend = version, resp.Nonce, false
	d.st.s.sent(d.st.node, resourcev3.SecretType, version, d.st.protocol)
	return nil
}

// flushDelta sends the proxy the Secrets it lacks.
func (d *sds) flushDelta(gs discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	cur := d.current()
	if cur == nil {
		return nil
	}
	var changed []*discoveryv3.Resource
	for _, r := range d.wanted(cur) {
		if d.sentVersions[r.Name] != r.Version {
			changed = append(changed, r)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	version := d.is.rootVer + "." + cur.version
	resp := &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: version, TypeUrl: resourcev3.SecretType, Resources: changed, Nonce: d.st.nextNonce()}
	if err := gs.Send(resp); err != nil {
		return err
	}
	if d.sentVersions == nil {
		d.sentVersions = map[string]string{}
	}
	for _, r := range changed {
		d.sentVersions[r.Name] = r.Version
	}
	d.version, d.nonce = version, resp.Nonce
	d.st.s.sent(d.st.node, resourcev3.SecretType, version, d.st.protocol)
	return nil
}
