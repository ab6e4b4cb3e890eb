// Command greeter-server is a real dubbo-go v3.3.0 provider on the dubbo
// protocol (hessian2) used as an upstream peer by metamesh's interop tests.
//
// It exports one interface (default org.apache.dubbo.samples.api.GreetingsService,
// Dubbo service version --service-version, none by default) and listens
// only on --addr. Without --registry it registers nowhere; with --registry
// zookeeper://HOST:PORT or etcd://HOST:PORT it registers there as any
// dubbo-go provider does: --registry-type interface (the default) writes its
// provider URL (with each --param as a URL parameter); service writes only
// the application-level (Dubbo 3) records: the interface→application
// mapping, the instance under /services/<application> and the application's
// metadata (remote metadata, in the same registry); all writes both. Once the
// listener accepts connections it prints exactly one line "ready <addr>" to
// stdout. SIGTERM or SIGINT stops it with exit status 0.
//
// Methods (dubbo-go also exposes each under its lower-case-first Java name,
// e.g. sayHello):
//
//	SayHello(name string) string   -> "<version>|<name>"
//	Attachment(key string) string  -> "<version>|<value of attachment key>" ("" if missing)
//	Sleep(ms int32) string         -> sleeps ms milliseconds, then "<version>|slept"
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"dubbo.apache.org/dubbo-go/v3"
	"dubbo.apache.org/dubbo-go/v3/common"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/common/extension"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	dubbolog "dubbo.apache.org/dubbo-go/v3/logger"
	"dubbo.apache.org/dubbo-go/v3/protocol"
	"dubbo.apache.org/dubbo-go/v3/registry"
	"dubbo.apache.org/dubbo-go/v3/server"
	gostlog "github.com/dubbogo/gost/log/logger"

	_ "github.com/metamesh/metamesh/testdata/peers/internal/dubboplugins"

	// the registries --registry names
	_ "dubbo.apache.org/dubbo-go/v3/registry/etcdv3"
	_ "dubbo.apache.org/dubbo-go/v3/registry/zookeeper"

	// application-level registration (--registry-type service or all): the
	// service-discovery registry, the interface→application mapping and
	// the metadata reports that publish the application's metadata
	_ "dubbo.apache.org/dubbo-go/v3/metadata/mapping/metadata"
	_ "dubbo.apache.org/dubbo-go/v3/metadata/report/etcd"
	_ "dubbo.apache.org/dubbo-go/v3/metadata/report/zookeeper"
	_ "dubbo.apache.org/dubbo-go/v3/registry/servicediscovery"
)

// GreetingsService is the provider implementation. Its exported methods with
// a context.Context first argument and a trailing error result are what
// dubbo-go registers as RPC methods.
type GreetingsService struct {
	version string
}

// SayHello echoes name, prefixed with the server's version label.
func (s *GreetingsService) SayHello(_ context.Context, name string) (string, error) {
	return s.version + "|" + name, nil
}

// Attachment returns the value of the request attachment key as the provider
// received it.
func (s *GreetingsService) Attachment(ctx context.Context, key string) (string, error) {
	return s.version + "|" + attachmentValue(ctx, key), nil
}

// Sleep waits ms milliseconds before answering.
func (s *GreetingsService) Sleep(_ context.Context, ms int32) (string, error) {
	if ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	return s.version + "|slept", nil
}

func attachmentValue(ctx context.Context, key string) string {
	atts, _ := ctx.Value(constant.AttachmentKey).(map[string]interface{})
	switch v := atts[key].(type) {
	case string:
		return v
	case []string:
		if len(v) > 0 {
			return v[0]
		}
	case nil:
	default:
		return fmt.Sprint(v)
	}
	return ""
}

func main() {
	addr := flag.String("addr", "127.0.0.1:20881", "host:port to listen on (only this address)")
	version := flag.String("version", "v1", "version label returned in every reply (not the Dubbo service version)")
	iface := flag.String("interface", "org.apache.dubbo.samples.api.GreetingsService", "Dubbo interface name to export")
	logLevel := flag.String("log-level", "warn", "dubbo-go log level (debug, info, warn, error)")
	heartbeat := flag.String("heartbeat-period", "", "getty heartbeat period for server-initiated heartbeats, e.g. 2s (default: dubbo-go's 60s)")
	maxMsgLen := flag.Int("max-msg-len", 0, "getty max message length in bytes (default: dubbo-go's 102400)")
	reg := flag.String("registry", "", "register the provider in zookeeper://HOST:PORT or etcd://HOST:PORT (default: nowhere)")
	regType := flag.String("registry-type", constant.RegistryTypeInterface, "with --registry: interface (provider URLs), service (application-level only) or all (both)")
	svcVersion := flag.String("service-version", "", "Dubbo service version the interface is exported with (default: none)")
	var params paramFlag
	flag.Var(&params, "param", "K=V: a URL parameter of the registered provider (repeatable)")
	flag.Parse()

	o := options{addr: *addr, version: *version, iface: *iface, logLevel: *logLevel, heartbeat: *heartbeat, maxMsgLen: *maxMsgLen,
		registry: *reg, registryType: *regType, serviceVersion: *svcVersion, params: params}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "greeter-server:", err)
		os.Exit(1)
	}
}

// paramFlag collects repeated --param K=V.
type paramFlag [][2]string

func (p *paramFlag) String() string { return fmt.Sprint(*p) }

func (p *paramFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want K=V, got %q", s)
	}
	*p = append(*p, [2]string{k, v})
	return nil
}

// options are the command line's.
type options struct {
	addr, version, iface, logLevel, heartbeat string
	maxMsgLen                                 int
	registry, registryType, serviceVersion    string
	params                                    paramFlag
}

// registryOptions turns --registry and --registry-type into dubbo-go's
// registry options: interface-level registration (the providers' URLs
// under /dubbo/<interface>/providers), application-level (dubbo-go's
// registry type "service", which no registry.With… option sets) or both, at
// that address.
func registryOptions(reg, regType string) ([]registry.Option, error) {
	scheme, addr, ok := strings.Cut(reg, "://")
	if !ok || addr == "" {
		return nil, fmt.Errorf("bad --registry %q: want zookeeper://HOST:PORT or etcd://HOST:PORT", reg)
	}
	opts := []registry.Option{registry.WithAddress(addr), registry.WithTimeout(5 * time.Second)}
	switch regType {
	case constant.RegistryTypeInterface:
		opts = append(opts, registry.WithRegisterInterface())
	case constant.RegistryTypeService:
		opts = append(opts, func(o *registry.Options) { o.Registry.RegistryType = constant.RegistryTypeService })
	case constant.RegistryTypeAll:
		opts = append(opts, registry.WithRegisterServiceAndInterface())
	default:
		return nil, fmt.Errorf("bad --registry-type %q: interface, service or all", regType)
	}
	switch scheme {
	case "zookeeper":
		opts = append(opts, registry.WithZookeeper())
	case "etcd":
		opts = append(opts, registry.WithEtcdV3())
	default:
		return nil, fmt.Errorf("bad --registry %q: zookeeper or etcd", reg)
	}
	return opts, nil
}

func run(o options) error {
	addr, version, iface, logLevel := o.addr, o.version, o.iface, o.logLevel
	gostlog.SetLoggerLevel(logLevel)
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad --addr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return fmt.Errorf("bad port in --addr %q", addr)
	}

	params := map[string]interface{}{}
	if o.heartbeat != "" {
		params["heartbeat-period"] = o.heartbeat
	}
	if o.maxMsgLen > 0 {
		params["getty-session-param"] = map[string]interface{}{"max-msg-len": o.maxMsgLen}
	}
	protoOpts := []protocol.Option{protocol.WithDubbo(), protocol.WithIp(host), protocol.WithPort(port)}
	if len(params) > 0 {
		protoOpts = append(protoOpts, protocol.WithParams(params))
	}

	instOpts := []dubbo.InstanceOption{
		dubbo.WithName("metamesh-greeter-" + version),
		// PEERS.md quirk 2: with the default "local" metadata type the server
		// also exports a MetadataService on :<port> on all interfaces.
		dubbo.WithRemoteMetadata(),
		dubbo.WithProtocol(protoOpts...),
		dubbo.WithLogger(dubbolog.WithLevel(logLevel)),
		// We handle SIGTERM/SIGINT ourselves (dubbo-go's handler waits for
		// several seconds of graceful shutdown steps).
		dubbo.WithShutdown(graceful_shutdown.WithoutInternalSignal()),
	}
	svcOpts := []server.ServiceOption{
		server.WithInterface(iface),
		server.WithSerialization(constant.Hessian2Serialization),
	}
	if o.serviceVersion != "" {
		svcOpts = append(svcOpts, server.WithVersion(o.serviceVersion))
	}
	if o.registry == "" {
		svcOpts = append(svcOpts, server.WithNotRegister())
	} else {
		ropts, err := registryOptions(o.registry, o.registryType)
		if err != nil {
			return err
		}
		instOpts = append(instOpts, dubbo.WithRegistry(ropts...))
		for _, kv := range o.params {
			svcOpts = append(svcOpts, server.WithParam(kv[0], kv[1]))
		}
	}
	ins, err := dubbo.NewInstance(instOpts...)
	if err != nil {
		return fmt.Errorf("dubbo.NewInstance: %w", err)
	}
	gostlog.SetLoggerLevel(logLevel) // the instance re-initialises the logger

	srv, err := ins.NewServer()
	if err != nil {
		return fmt.Errorf("NewServer: %w", err)
	}
	// PEERS.md quirk 1: Register(impl, nil, …) panics.
	if err := srv.Register(&GreetingsService{version: version},
		&common.ServiceInfo{InterfaceName: iface}, svcOpts...); err != nil {
		return fmt.Errorf("register: %w", err)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }() // Serve blocks forever on success

	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-serveErr:
			return fmt.Errorf("serve: %w", err)
		case <-sigs:
			return nil
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("listener on %s not accepting after 30s: %v", addr, err)
		}
	}
	fmt.Printf("ready %s\n", addr)

	select {
	case <-sigs:
		extension.GetProtocol("dubbo").Destroy() // closes the listener and sessions
		return nil
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
}
