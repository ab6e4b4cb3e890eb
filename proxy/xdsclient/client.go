package xdsclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/certs"
)

// MaxResponseBytes is the largest discovery response the client takes.
const MaxResponseBytes = 256 << 20

// ReceiveWindow is the client's gRPC flow-control window (stream and
// connection), fixed: a proxy's first config at 2,000 services is about
// 3.5 MB, which gRPC's initial 64 KiB window (grown only as it measures
// the link) cut into some 55 waits for a window update, each a wake-up,
// a read and a short write for the control plane. With 4 MiB it is sent
// in a few large writes (docs/xds.md#writes); the proxy reads every
// response whole anyway.
const ReceiveWindow = 4 << 20

// ReadBufferSize is the client's gRPC read buffer: receiving those 3.5 MB
// in 256 KiB reads rather than gRPC's default 32 KiB ones took a quarter
// of the CPU off 2,000 simulated sidecars in a reconnect storm
// (docs/xds.md#writes); 1 MiB did no better.
const ReadBufferSize = 256 << 10

// Config configures a Client.
type Config struct {
	// Address is the control plane's ADS address, host:port.
	Address string
	// NodeID (required) and Cluster identify the proxy to the control
	// plane.
	NodeID, Cluster string
	// Gateway is the gateway the proxy serves, "namespace/name", sent in
	// the node metadata (xdsapi.GatewayMetadata); "" for a sidecar
	// (docs/gateways.md).
	Gateway string
	// TLS secures the channel. Nil means plaintext: the caller decides
	// that only when explicitly asked to.
	TLS *tls.Config
	// Apply puts a complete set of resources in force, or returns why it
	// can't and changes nothing (proxy.Server.Apply).
	Apply func(*xdsapi.Resources) error
	// OnResponse, if set, is told the outcome of each response: its type
	// (cluster, endpoint, listener, route) and whether it was ACKed.
	OnResponse func(typ string, acked bool)
	// Log gets one line per applied or refused response and per
	// connection change (nop if nil).
	Log *zap.Logger
	// Backoff paces reconnections (DefaultBackoff if zero).
	Backoff Backoff
	// Protocol is the ADS variant: ProtocolDelta (the default if empty)
	// or ProtocolSotw.
	Protocol string
	// Certs, if set, makes the client ask the control plane for the
	// proxy's workload certificate (SDS) and keep it there, rotated
	// (docs/identity.md). The client makes the key; it never leaves.
	Certs *certs.Store
	// TokenFile, if set, holds the token that proves who the proxy is (in
	// Kubernetes its pod's projected service-account token), presented on
	// every stream and read afresh for each.
	TokenFile string
}

// The ADS variants of Config.Protocol.
const (
	// ProtocolDelta is incremental ADS: a change sends only the resources
	// it changed, and a reconnection only what changed meanwhile.
	ProtocolDelta = "delta"
	// ProtocolSotw is state-of-the-world ADS: a change sends every
	// resource of the types it changed.
	ProtocolSotw = "sotw"
)

// Client is an ADS client. Run it; it reconnects until its context ends.
type Client struct {
	cfg  Config
	log  *zap.Logger
	conn *grpc.ClientConn

	connected atomic.Bool

	// mu guards the accepted resources and the state of the first sync;
	// it is held across Apply so updates apply in order.
	mu       sync.Mutex
	accepted map[string]*update // by type URL: the last ACKed response
	// received are, by type URL and name, the resources of every delta
	// response, ACKed or not: what the control plane knows this proxy has.
	received        map[string]map[string]resource
	receivedVersion map[string]string  // by type URL: of the last delta response
	held            map[string]*update // delta responses not answered yet, by type URL
	synced          bool               // a complete set has been applied
	inForce         *xdsapi.Resources  // the set last applied

	sds        *sds   // nil without Config.Certs
	sdsVersion string // of the Secrets last accepted (state of the world)
}

// New checks cfg and prepares the connection (nothing is dialled before
// Run).
func New(cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("xds: no control plane address")
	}
	if cfg.NodeID == "" {
		return nil, errors.New("xds: no node ID")
	}
	if cfg.Apply == nil {
		return nil, errors.New("xds: no Apply func")
	}
	switch cfg.Protocol {
	case "":
		cfg.Protocol = ProtocolDelta
	case ProtocolDelta, ProtocolSotw:
	default:
		return nil, fmt.Errorf("xds: protocol %q: want %s or %s", cfg.Protocol, ProtocolDelta, ProtocolSotw)
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	conn, err := grpc.NewClient(cfg.Address,
		grpc.WithTransportCredentials(creds),
		// A control plane that vanished without closing the connection
		// (a partition, a dead node) is noticed within 40 s.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		// A state-of-the-world response carries every resource of its type:
		// 2,000 services make about 1.4 MB of routes, and gRPC's default
		// limit is 4 MB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseBytes)),
		grpc.WithInitialWindowSize(ReceiveWindow),
		grpc.WithInitialConnWindowSize(ReceiveWindow),
		grpc.WithReadBufferSize(ReadBufferSize),
	)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: cfg.Log.With(zap.String("control_plane", cfg.Address)), conn: conn, accepted: map[string]*update{}, received: map[string]map[string]resource{},
		receivedVersion: map[string]string{}, held: map[string]*update{}}
	if cfg.Certs != nil {
		if c.sds, err = newSDS(cfg.Certs); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run keeps an ADS stream open until ctx ends, reconnecting with backoff
// whenever it breaks; then it closes the connection and returns nil.
func (c *Client) Run(ctx context.Context) error {
	defer c.conn.Close()
	failures := 0
	for {
		stream := c.delta
		if c.cfg.Protocol == ProtocolSotw {
			stream = c.sotw
		}
		served, err := stream(ctx)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if served {
			failures = 0
		}
		wait := c.cfg.Backoff.delay(failures)
		failures++
		c.log.Warn("control plane stream ended; the last config stays in force, retrying",
			zap.Error(err), zap.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Connected reports whether a stream is open and the control plane took
// it (its headers came).
func (c *Client) Connected() bool { return c.connected.Load() }

// Versions returns the version in force of each type (cluster, endpoint,
// listener, route) received from the control plane; empty before the
// first complete set is applied.
func (c *Client) Versions() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.accepted))
	for url, u := range c.accepted {
		out[typeName(url)] = u.version
	}
	return out
}

// acceptedCopy is the accepted responses by type; call with mu held.
func (c *Client) acceptedCopy() map[string]*update { return maps.Clone(c.accepted) }

// applied logs and reports an update applied.
func (c *Client) applied(u *update) {
	c.log.Info("config from the control plane applied", zap.String("type", typeName(u.typeURL)),
		zap.String("version", u.version), zap.Int("resources", len(u.resources)))
	c.report(u.typeURL, true)
}

// refused logs and reports an update refused.
func (c *Client) refused(u *update, err error) {
	c.log.Warn("config from the control plane refused (NACK); the last good config stays in force",
		zap.String("type", u.typeURL), zap.String("version", u.version), zap.Error(err))
	c.report(u.typeURL, false)
}

func (c *Client) report(typeURL string, acked bool) {
	if c.cfg.OnResponse == nil {
		return
	}
	name := typeName(typeURL)
	if typeURL == resourcev3.SecretType {
		name = "secret"
	}
	if name == "" {
		name = "unknown"
	}
	c.cfg.OnResponse(name, acked)
}

// errorDetail is a NACK's error_detail.
func errorDetail(err error) *statuspb.Status {
	return &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}
