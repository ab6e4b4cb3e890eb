package xds

import (
	"fmt"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the codec delegated to
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// codec is gRPC's proto codec, except for responses marshaled in advance
// (prepared): their bytes, shared by every stream that sends them, go to
// gRPC as they are, followed by the stream's own nonce. So a table or a
// diff is marshaled once for all the streams it goes to, and a response
// waiting in gRPC's buffers for its proxy to read it holds no copy of its
// own (docs/xds.md#encoded-once). GRPCOptions installs it.
type codec struct{}

var protoCodec = encoding.GetCodecV2("proto")

// Name is "proto": the codec speaks protobuf, as gRPC's does.
func (codec) Name() string { return "proto" }

// Marshal sends a prepared response's shared bytes and its nonce, and
// marshals anything else as gRPC's codec does.
func (codec) Marshal(v any) (mem.BufferSlice, error) {
	out, ok := v.(*outgoing)
	if !ok {
		return protoCodec.Marshal(v)
	}
	// The nonce is the last field: a field may come in any order in
	// protobuf's wire format.
	nonce := protowire.AppendTag(nil, nonceField, protowire.BytesType)
	nonce = protowire.AppendString(nonce, out.nonce)
	return mem.BufferSlice{mem.SliceBuffer(out.body.bytes), mem.SliceBuffer(nonce)}, nil
}

// Unmarshal decodes requests as gRPC's codec does, except a delta
// request read as a deltaRequest: its initial_resource_versions are kept
// as they came (resume.go).
func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*deltaRequest)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	// A copy of its own: the request keeps its records where they lie.
	buf := requestBuf(data.Len())
	data.CopyTo(*buf)
	err := decodeDelta(*buf, r)
	if err == nil && r.initial.inPlace {
		r.initial.buf = buf
	} else {
		putRequestBuf(buf)
	}
	return err
}

// requestBufs are the buffers large delta requests were copied into,
// given back once their stream has compared the records they hold
// (initialVersions.release): 2,000 proxies resuming at once send 1.5 MB
// each, 3 GB that were garbage to collect (docs/xds.md#resume).
var requestBufs sync.Pool

// pooledRequest is the least size of a request copied into a pooled
// buffer; a smaller one (an ACK) is copied into a buffer of its own.
const pooledRequest = 64 << 10

// requestBuf is a buffer of n bytes, to be overwritten whole.
func requestBuf(n int) *[]byte {
	if n >= pooledRequest {
		if b, ok := requestBufs.Get().(*[]byte); ok && cap(*b) >= n {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n)
	return &b
}

// putRequestBuf gives back a buffer nothing refers to any more.
func putRequestBuf(b *[]byte) {
	if cap(*b) >= pooledRequest {
		requestBufs.Put(b)
	}
}

// nonceField is the number of the nonce in both DiscoveryResponse and
// DeltaDiscoveryResponse.
var nonceField = func() protowire.Number {
	sotw := (&discoveryv3.DiscoveryResponse{}).ProtoReflect().Descriptor().Fields().ByName("nonce").Number()
	delta := (&discoveryv3.DeltaDiscoveryResponse{}).ProtoReflect().Descriptor().Fields().ByName("nonce").Number()
	if sotw != delta {
		panic(fmt.Sprintf("xds: the nonce is field %d of DiscoveryResponse but %d of DeltaDiscoveryResponse", sotw, delta))
	}
	return sotw
}()

// prepared is a response without its nonce, marshaled once, on first
// use, and then only read.
type prepared struct {
	once  sync.Once
	msg   proto.Message // nil once marshaled
	bytes []byte
	err   error
}

// prepare returns msg (its nonce unset) to be marshaled once when first
// sent. msg must not change afterwards.
func prepare(msg proto.Message) *prepared { return &prepared{msg: msg} }

func (p *prepared) marshal() error {
	p.once.Do(func() {
		p.bytes, p.err = proto.Marshal(p.msg)
		p.msg = nil
	})
	return p.err
}

// outgoing is a prepared response as one stream sends it: with its nonce.
type outgoing struct {
	body  *prepared
	nonce string
}

// sendPrepared sends p with nonce on a stream of a gRPC server built with
// GRPCOptions (its codec).
func sendPrepared(send func(any) error, p *prepared, nonce string) error {
	if err := p.marshal(); err != nil {
		return err
	}
	return send(&outgoing{body: p, nonce: nonce})
}

var _ encoding.CodecV2 = codec{}
