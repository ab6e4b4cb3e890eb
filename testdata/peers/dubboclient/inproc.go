//go:build !race

package dubboclient

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/common/extension"
	"dubbo.apache.org/dubbo-go/v3/filter"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	dubbolog "dubbo.apache.org/dubbo-go/v3/logger"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	gostlog "github.com/dubbogo/gost/log/logger"

	_ "github.com/metamesh/metamesh/testdata/peers/internal/dubboplugins"
)

const inprocAvailable = true

const filterName = "metamesh-ctx-attachments"

func init() {
	extension.SetFilter(filterName, func() filter.Filter { return attachmentFilter{} })
}

// inproc is a dubbo-go consumer in this process.
type inproc struct {
	conn *client.Connection
}

// dialMu serialises dials: dubbo.NewInstance replaces dubbo-go's global root
// config, which the getty client reads when it opens a new exchange client.
var dialMu sync.Mutex

func newInproc(addr, iface string, o Options) (b backend, err error) {
	dialMu.Lock()
	defer dialMu.Unlock()

	gostlog.SetLoggerLevel(o.LogLevel)
	params := map[string]interface{}{}
	if o.Connections > 0 {
		params["connection-number"] = o.Connections
	}
	if o.HeartbeatPeriod > 0 {
		params["heartbeat-period"] = o.HeartbeatPeriod.String()
	}
	if o.MaxMsgLen > 0 {
		params["getty-session-param"] = map[string]interface{}{"max-msg-len": o.MaxMsgLen}
	}
	protoOpts := []protocol.Option{protocol.WithDubbo()}
	if len(params) > 0 {
		protoOpts = append(protoOpts, protocol.WithParams(params))
	}
	ins, err := dubbo.NewInstance(
		dubbo.WithName("metamesh-dubboclient"),
		dubbo.WithProtocol(protoOpts...),
		dubbo.WithLogger(dubbolog.WithLevel(o.LogLevel)),
		// leave the process's signal handling alone
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
	)
	if err != nil {
		return nil, fmt.Errorf("dubboclient: NewInstance: %w", err)
	}
	gostlog.SetLoggerLevel(o.LogLevel) // the instance re-initialises the logger

	cli, err := ins.NewClient(
		client.WithClientProtocolDubbo(),
		client.WithClientSerialization(constant.Hessian2Serialization),
		client.WithClientClusterFailFast(),
		client.WithClientRequestTimeout(o.Timeout),
	)
	if err != nil {
		return nil, fmt.Errorf("dubboclient: NewClient: %w", err)
	}

	// dubbo-go panics inside Dial when it cannot build the invoker (for
	// example when nothing listens on addr).
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("dubboclient: dial %s: %v", addr, r)
		}
	}()
	refOpts := []client.ReferenceOption{
		client.WithURL("dubbo://" + addr),
		client.WithProtocolDubbo(),
		client.WithSerialization(constant.Hessian2Serialization),
		client.WithClusterFailFast(),
		client.WithFilter(filterName),
	}
	if o.Version != "" {
		refOpts = append(refOpts, client.WithVersion(o.Version))
	}
	conn, err := cli.Dial(iface, refOpts...)
	if err != nil {
		return nil, fmt.Errorf("dubboclient: dial %s: %w", addr, err)
	}
	if inv := invokerOf(conn); inv == nil || !inv.IsAvailable() {
		return nil, fmt.Errorf("dubboclient: dial %s: no connection", addr)
	}
	return &inproc{conn: conn}, nil
}

type callKey struct{}

type callInfo struct {
	atts   map[string]string
	oneway bool
}

func (p *inproc) call(method string, args []interface{}, atts map[string]string, oneway bool, timeout time.Duration) (out string, err error) {
	// dubbo-go dereferences the destroyed invoker's nil URL when a call
	// races with Close.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("dubboclient: %s: %v", method, r)
		}
	}()
	ctx := context.WithValue(context.Background(), callKey{}, callInfo{atts: atts, oneway: oneway})
	// Always pass the timeout: without it the call's "timeout" attachment
	// is "" and dubbo-go parses it as 0.
	err = p.conn.CallUnary(ctx, args, &out, method, client.WithCallRequestTimeout(timeout))
	return out, err
}

func (p *inproc) close() {
	if inv := invokerOf(p.conn); inv != nil {
		inv.Destroy()
	}
}

// invokerOf digs the cluster invoker out of a client.Connection: dubbo-go
// v3.3.0's new client API has no way to release a reference.
func invokerOf(conn *client.Connection) protocol.Invoker {
	if conn == nil {
		return nil
	}
	refOpts := unexported(reflect.ValueOf(conn).Elem().FieldByName("refOpts"))
	if !refOpts.IsValid() || refOpts.IsNil() {
		return nil
	}
	inv := unexported(refOpts.Elem().FieldByName("invoker"))
	if !inv.IsValid() || inv.IsNil() {
		return nil
	}
	i, _ := inv.Interface().(protocol.Invoker)
	return i
}

func unexported(v reflect.Value) reflect.Value {
	if !v.IsValid() || !v.CanAddr() {
		return reflect.Value{}
	}
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

// attachmentFilter copies the call's attachments onto the invocation
// (PEERS.md quirk 3) and marks oneway calls.
type attachmentFilter struct{}

func (attachmentFilter) Invoke(ctx context.Context, invoker protocol.Invoker, inv protocol.Invocation) protocol.Result {
	ci, _ := ctx.Value(callKey{}).(callInfo)
	for k, v := range ci.atts {
		inv.SetAttachment(k, v)
	}
	if ci.oneway {
		inv.SetAttachment(constant.AsyncKey, "true")
	}
	return invoker.Invoke(ctx, inv)
}

func (attachmentFilter) OnResponse(_ context.Context, res protocol.Result, _ protocol.Invoker, _ protocol.Invocation) protocol.Result {
	return res
}
