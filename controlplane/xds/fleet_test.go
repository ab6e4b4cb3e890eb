package xds_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// sidecar is a simulated proxy on delta ADS, as metamesh proxies are by
// default: its own connection, a wildcard subscription to every type, an
// ACK for each response as it arrives. It decodes a response's envelope
// only (envelopeCodec), not its resources: the simulated sidecars share
// the benchmark's 2 cores with the control plane, and real ones don't.
type sidecar struct {
	route atomic.Pointer[string] // the route version last ACKed
	acks  atomic.Int64
	// have, if set before start, is sent as initial_resource_versions;
	// record, if set, gets the names and versions received.
	have   map[string]map[string]string
	record func(typeURL string, r *discoveryv3.Resource)
	// initial are the first requests by type (have, without the node),
	// marshaled once for the fleet: the simulated sidecars share 2 cores
	// with the control plane, real ones don't.
	initial [][]byte
	// expect is what a lean sidecar (h2) without have checks the first
	// response of each type against, by type URL; seen, if set, gets
	// each response it decodes.
	expect map[string]typeDigest
	seen   func(*deltaResponse)
}

// rawRequest is a request marshaled already, in parts, sent as it is by
// envelopeCodec.
type rawRequest [][]byte

// marshalInitial marshals the first requests of sidecars that have have.
func marshalInitial(have map[string]map[string]string) ([][]byte, error) {
	if have == nil {
		return nil, nil
	}
	out := make([][]byte, len(adsTypes))
	for i, typ := range adsTypes {
		b, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, InitialResourceVersions: have[typ]})
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// fleet is the simulated sidecars of a benchmark. In the benchmarks they
// run in a process of their own (fleetMain), so that the figures
// measured in the benchmark's process are the control plane's alone.
type fleet struct {
	sidecars []*sidecar
	acked    chan struct{} // a signal after ACKs, lossy
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	err      atomic.Pointer[error] // the first sidecar's failure, unless retry
	// retry: a sidecar whose stream fails connects again after 250–500
	// ms, as a proxy does (docs/xds.md#when-the-control-plane-is-away);
	// reconnects counts how often.
	retry      bool
	reconnects atomic.Int64
	// h2: the sidecars are lean ones (h2sidecar_test.go) rather than
	// grpc-go clients.
	h2 bool
}

// startFleet connects a sidecar for each node of spec, all at once. A
// sidecar whose stream fails connects again, as a proxy does (see
// reconnects).
func startFleet(spec fleetSpec, have map[string]map[string]string) (*fleet, error) {
	initial, err := marshalInitial(have)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{acked: make(chan struct{}, 1), cancel: cancel, retry: true}
	switch spec.Fleet {
	case "", "grpc":
	case "h2":
		f.h2 = true
	default:
		cancel()
		return nil, fmt.Errorf("fleet %q: neither grpc nor h2", spec.Fleet)
	}
	for _, node := range spec.nodes() {
		_, ns, _ := strings.Cut(node, ".")
		f.add(ctx, spec.Addr, node, &sidecar{have: have, initial: initial, expect: spec.Expect[ns]})
	}
	return f, nil
}

func (f *fleet) add(ctx context.Context, addr, node string, sc *sidecar) {
	f.sidecars = append(f.sidecars, sc)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			run := sc.run
			if f.h2 {
				run = sc.runH2
			}
			err := run(ctx, addr, node, f.acked)
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("sidecar %s: %w", node, err)
			if !f.retry || errors.Is(err, errWrongConfig) {
				f.err.CompareAndSwap(nil, &err)
				return
			}
			if f.reconnects.Add(1) == 1 {
				fmt.Fprintln(os.Stderr, "fleet: reconnecting (the first of the reconnections, counted):", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(250+rand.IntN(250)) * time.Millisecond):
			}
		}
	}()
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

func (sc *sidecar) run(ctx context.Context, addr, node string, acked chan struct{}) error {
	// The windows and read buffer are the proxy's.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(xdsclient.ReceiveWindow), grpc.WithInitialConnWindowSize(xdsclient.ReceiveWindow),
		grpc.WithReadBufferSize(xdsclient.ReadBufferSize),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer conn.Close()
	// Like a proxy reconnecting with backoff, a sidecar whose connection
	// fails (the control plane's listen queue full in a storm) tries again.
	opts := []grpc.CallOption{grpc.WaitForReady(true)}
	if sc.record == nil {
		opts = append(opts, grpc.ForceCodecV2(envelopeCodec{}))
	}
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx, opts...)
	if err != nil {
		return err
	}
	for i, typ := range adsTypes {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, InitialResourceVersions: sc.have[typ]}
		if i == 0 {
			req.Node = &corev3.Node{Id: node}
		}
		var msg any = req
		if sc.initial != nil && sc.record == nil {
			// Marshaled once for the fleet, this sidecar's node added:
			// protobuf merges concatenated messages.
			msg = rawRequest{sc.initial[i]}
			if i == 0 {
				b, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{Node: req.Node})
				if err != nil {
					return err
				}
				msg = rawRequest{b, sc.initial[i]}
			}
		}
		if err := st.SendMsg(msg); err != nil {
			if errors.Is(err, io.EOF) {
				// The stream ended: its status is Recv's error.
				_, err = st.Recv()
			}
			return err
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		if sc.record != nil {
			for _, r := range resp.GetResources() {
				sc.record(resp.GetTypeUrl(), r)
			}
		}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		if resp.GetTypeUrl() == resourcev3.RouteType {
			v := resp.GetSystemVersionInfo()
			sc.route.Store(&v)
		}
		sc.acks.Add(1)
		select {
		case acked <- struct{}{}:
		default:
		}
	}
}

// envelopeCodec is gRPC's proto codec, except that it decodes a
// DeltaDiscoveryResponse's envelope only: its version, type, nonce and
// removed names, not its resources; and that it sends a rawRequest as it
// is.
type envelopeCodec struct{}

var protoCodec = encoding.GetCodecV2("proto")

func (envelopeCodec) Name() string { return "proto" }

func (envelopeCodec) Marshal(v any) (mem.BufferSlice, error) {
	raw, ok := v.(rawRequest)
	if !ok {
		return protoCodec.Marshal(v)
	}
	out := make(mem.BufferSlice, len(raw))
	for i, b := range raw {
		out[i] = mem.SliceBuffer(b)
	}
	return out, nil
}

// Unmarshal decodes a delta response but its resources, read where they
// lie in gRPC's buffers and skipped: not even copied, as the simulated
// sidecars share the cores with the control plane (copying 3.5 MB per
// fresh sidecar was a third of the fleet's CPU).
func (envelopeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	resp, ok := v.(*discoveryv3.DeltaDiscoveryResponse)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	resources := resp.ProtoReflect().Descriptor().Fields().ByName("resources").Number()
	r := data.Reader()
	defer r.Close()
	var envelope []byte
	var peek [][]byte
	for r.Remaining() > 0 {
		tag, err := readVarint(r, &peek)
		if err != nil {
			return err
		}
		num, typ := protowire.DecodeTag(tag)
		if typ != protowire.BytesType {
			// Every field of DeltaDiscoveryResponse is length-delimited.
			return fmt.Errorf("delta response field %d: wire type %d", num, typ)
		}
		n, err := readVarint(r, &peek)
		if err != nil {
			return err
		}
		if num == resources {
			if _, err := r.Discard(int(n)); err != nil {
				return err
			}
			continue
		}
		value := make([]byte, n)
		if _, err := io.ReadFull(r, value); err != nil {
			return err
		}
		envelope = protowire.AppendBytes(protowire.AppendTag(envelope, num, typ), value)
	}
	return proto.Unmarshal(envelope, resp)
}

// readVarint reads a varint from r, from where it lies when it does not
// straddle two buffers (ReadByte per byte took a sixth of the fleet's
// CPU); peek is scratch space.
func readVarint(r *mem.Reader, peek *[][]byte) (uint64, error) {
	var err error
	if *peek, err = r.Peek(min(binary.MaxVarintLen64, r.Remaining()), (*peek)[:0]); err != nil {
		return 0, err
	}
	if v, n := protowire.ConsumeVarint((*peek)[0]); n > 0 {
		_, err := r.Discard(n)
		return v, err
	}
	return binary.ReadUvarint(r)
}

// waitRoutes waits until every sidecar of idx (all if nil) has ACKed
// route version v.
func (f *fleet) waitRoutes(idx []int, v string, within time.Duration) error {
	if idx == nil {
		idx = make([]int, len(f.sidecars))
		for i := range idx {
			idx[i] = i
		}
	}
	deadline := time.Now().Add(within)
	for {
		if err := f.err.Load(); err != nil {
			return *err
		}
		all := true
		for _, i := range idx {
			if got := f.sidecars[i].route.Load(); got == nil || *got != v {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sidecars did not ACK route version %s within %v", v, within)
		}
		select {
		case <-f.acked:
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// acks counts the responses ACKed by all the sidecars, and by those of
// idx.
func (f *fleet) acks(idx []int) (all, in int64) {
	for _, sc := range f.sidecars {
		all += sc.acks.Load()
	}
	for _, i := range idx {
		in += f.sidecars[i].acks.Load()
	}
	return all, in
}

// fleetEnv, set in the environment of the test binary, makes it the
// simulated sidecars of a benchmark (fleetMain) instead of running tests.
const fleetEnv = "METAMESH_XDS_BENCH_FLEET"

// fleetSpec is what a fleet process is given in fleetEnv.
type fleetSpec struct {
	Addr     string `json:"addr"`
	Sidecars int    `json:"sidecars"`
	// Namespaces spreads the sidecars over benchNamespace(0..n-1), sidecar
	// i in i%n; 0: all in "default".
	Namespaces int `json:"namespaces"`
	// Have names a JSON file of initial_resource_versions by type, sent by
	// every sidecar (a reconnection).
	Have string `json:"have,omitempty"`
	// Fleet is grpc (grpc-go clients, the default) or h2 (lean sidecars,
	// h2sidecar_test.go); Expect, by namespace, the digests by type URL
	// a lean sidecar new to the stream checks its first responses
	// against.
	Fleet  string                           `json:"fleet,omitempty"`
	Expect map[string]map[string]typeDigest `json:"expect,omitempty"`
}

func (s fleetSpec) nodes() []string {
	return sidecarNodes(s.Sidecars, func(i int) string {
		if s.Namespaces == 0 {
			return "default"
		}
		return benchNamespace(i % s.Namespaces)
	})
}

// inNamespace are the sidecars of namespace ns ("*": all, nil).
func (s fleetSpec) inNamespace(ns string) []int {
	if ns == "*" {
		return nil
	}
	idx := []int{}
	for i, node := range s.nodes() {
		if strings.HasSuffix(node, "."+ns) {
			idx = append(idx, i)
		}
	}
	return idx
}

func benchNamespace(j int) string { return fmt.Sprintf("ns%03d", j) }

// fleetMain runs the sidecars of the fleetSpec in fleetEnv, answering
// one line to each line of commands read on stdin, until stdin ends:
//
//	connect            connect every sidecar at once
//	wait NS VERSION    wait until every sidecar of NS (* for all) has ACKed route VERSION
//	acks NS            count the responses ACKed by all sidecars and by those of NS
//	reconnects         count the sidecars' reconnections
//	cpu                the fleet process's CPU time so far, in µs (cpuTime)
//	profile FILE       start writing the fleet process's CPU profile to FILE
//	endprofile         stop it
//
// The answer is `ok` (after wait and acks: the two counts) or `err` and
// the reason. A first `ok` says the process has started.
func fleetMain() int {
	var spec fleetSpec
	if err := json.Unmarshal([]byte(os.Getenv(fleetEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		return 2
	}
	var have map[string]map[string]string
	if spec.Have != "" {
		b, err := os.ReadFile(spec.Have)
		if err == nil {
			err = json.Unmarshal(b, &have)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleet:", err)
			return 2
		}
	}
	var f *fleet
	var prof *os.File
	defer func() {
		if f != nil {
			f.stop()
		}
	}()
	in, out := bufio.NewScanner(os.Stdin), bufio.NewWriter(os.Stdout)
	// Started: the benchmark times from the next command.
	if _, err := fmt.Fprintln(out, "ok"); err != nil || out.Flush() != nil {
		return 1
	}
	for in.Scan() {
		reply, err := func(cmd []string) (string, error) {
			switch {
			case len(cmd) == 1 && cmd[0] == "connect" && f == nil:
				var err error
				f, err = startFleet(spec, have)
				return "", err
			case len(cmd) == 3 && cmd[0] == "wait" && f != nil:
				idx := spec.inNamespace(cmd[1])
				if err := f.waitRoutes(idx, cmd[2], 5*time.Minute); err != nil {
					return "", err
				}
				all, in := f.acks(idx)
				return fmt.Sprintf(" %d %d", all, in), nil
			case len(cmd) == 2 && cmd[0] == "profile" && prof == nil:
				var err error
				if prof, err = os.Create(cmd[1]); err != nil {
					return "", err
				}
				return "", pprof.StartCPUProfile(prof)
			case len(cmd) == 1 && cmd[0] == "endprofile" && prof != nil:
				pprof.StopCPUProfile()
				err := prof.Close()
				prof = nil
				return "", err
			case len(cmd) == 1 && cmd[0] == "cpu":
				return fmt.Sprintf(" %d", cpuTime().Microseconds()), nil
			case len(cmd) == 1 && cmd[0] == "reconnects" && f != nil:
				return fmt.Sprintf(" %d", f.reconnects.Load()), nil
			case len(cmd) == 2 && cmd[0] == "acks" && f != nil:
				all, in := f.acks(spec.inNamespace(cmd[1]))
				return fmt.Sprintf(" %d %d", all, in), nil
			}
			return "", fmt.Errorf("command %q not understood", cmd)
		}(strings.Fields(in.Text()))
		if err != nil {
			fmt.Fprintf(out, "err %v\n", err)
		} else {
			fmt.Fprintf(out, "ok%s\n", reply)
		}
		if err := out.Flush(); err != nil {
			return 1
		}
	}
	return 0
}

// fleetProc is a fleet process, seen from the benchmark.
type fleetProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startFleetProc starts a fleet process (the test binary itself); its
// sidecars connect on connect.
func startFleetProc(b *testing.B, spec fleetSpec) *fleetProc {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), fleetEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &fleetProc{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	p.answer(b, "start")
	return p
}

// call sends one command and returns the numbers of its answer.
func (p *fleetProc) call(b *testing.B, cmd string) []int64 {
	b.Helper()
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		b.Fatalf("fleet: %s: %v", cmd, err)
	}
	return p.answer(b, cmd)
}

// answer reads the answer to cmd and returns its numbers.
func (p *fleetProc) answer(b *testing.B, cmd string) []int64 {
	b.Helper()
	if !p.out.Scan() {
		b.Fatalf("fleet: %s: no answer (%v)", cmd, p.out.Err())
	}
	reply := strings.Fields(p.out.Text())
	if len(reply) == 0 || reply[0] != "ok" {
		b.Fatalf("fleet: %s: %s", cmd, p.out.Text())
	}
	var nums []int64
	for _, f := range reply[1:] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("fleet: %s: %s", cmd, p.out.Text())
		}
		nums = append(nums, n)
	}
	return nums
}

func (p *fleetProc) connect(b *testing.B) { p.call(b, "connect") }

// profile has the fleet process write its CPU profile to file with
// ".fleet" added, unless file is "", until stopped.
func (p *fleetProc) profile(b *testing.B, file string) (stop func()) {
	if file == "" {
		return func() {}
	}
	p.call(b, "profile "+file+".fleet")
	return func() { p.call(b, "endprofile") }
}

// cpu is the fleet process's CPU time so far: the simulated sidecars',
// which share the machine with the control plane.
func (p *fleetProc) cpu(b *testing.B) time.Duration {
	return time.Duration(p.call(b, "cpu")[0]) * time.Microsecond
}

// wait waits until every sidecar of ns (* for all) has ACKed route
// version v, and returns the responses ACKed by all and by those of ns.
func (p *fleetProc) wait(b *testing.B, ns, v string) (all, in int64) {
	n := p.call(b, "wait "+ns+" "+v)
	return n[0], n[1]
}

// acks are the responses ACKed by all sidecars and by those of ns.
func (p *fleetProc) acks(b *testing.B, ns string) (all, in int64) {
	n := p.call(b, "acks "+ns)
	return n[0], n[1]
}

// stop ends the fleet: its sidecars disconnect.
func (p *fleetProc) stop(b *testing.B) {
	b.Helper()
	_ = p.in.Close()
	if err := p.cmd.Wait(); err != nil {
		b.Errorf("fleet: %v", err)
	}
}
