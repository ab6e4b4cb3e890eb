package thrift

import (
	"context"
	"maps"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/metamesh/metamesh/protocols"
)

// combo is one transport and protocol pair, named as in the config.
type combo struct {
	trans, proto string // framed|unframed|header, strict|lax|compact
	zlib         bool   // THeader only
}

func (c combo) String() string {
	s := c.trans + "-" + c.proto
	if c.zlib {
		s += "-zlib"
	}
	return s
}

var combos = []combo{
	{"framed", "strict", false}, {"framed", "lax", false}, {"framed", "compact", false},
	{"unframed", "strict", false}, {"unframed", "lax", false}, {"unframed", "compact", false},
	{"header", "strict", false}, {"header", "compact", false},
	{"header", "strict", true}, {"header", "compact", true},
}

// call describes one message written with the Apache Thrift library.
type call struct {
	service string // TMultiplexedProtocol service name, or ""
	method  string
	typ     thrift.TMessageType
	seq     int32
	headers map[string]string // THeader info headers
}

var ctx = context.Background()

// newProto makes the library's protocol stack for c over mem.
func newProto(c combo, mem thrift.TTransport) thrift.TProtocol {
	strict := c.proto != "lax"
	conf := &thrift.TConfiguration{TBinaryStrictWrite: &strict, TBinaryStrictRead: thrift.BoolPtr(false)}
	switch c.trans {
	case "header":
		id := thrift.THeaderProtocolBinary
		if c.proto == "compact" {
			id = thrift.THeaderProtocolCompact
		}
		conf.THeaderProtocolID = &id
		if c.zlib {
			conf.THeaderTransforms = []thrift.THeaderTransformID{thrift.TransformZlib}
		}
		return thrift.NewTHeaderProtocolConf(mem, conf)
	case "framed":
		mem = thrift.NewTFramedTransportConf(mem, conf)
	}
	if c.proto == "compact" {
		return thrift.NewTCompactProtocolConf(mem, conf)
	}
	return thrift.NewTBinaryProtocolConf(mem, conf)
}

// build writes m with a 3-field argument struct {1: string, 2: i32,
// 3: list<string>} (or, for an exception, a TApplicationException).
func build(t testing.TB, c combo, m call) []byte {
	t.Helper()
	mem := thrift.NewTMemoryBuffer()
	p := newProto(c, mem)
	if hp, ok := p.(*thrift.THeaderProtocol); ok {
		for k, v := range m.headers {
			hp.SetWriteHeader(k, v)
		}
	}
	if m.service != "" {
		p = thrift.NewTMultiplexedProtocol(p, m.service)
	}
	must(t, p.WriteMessageBegin(ctx, m.method, m.typ, m.seq))
	if m.typ == thrift.EXCEPTION {
		must(t, thrift.NewTApplicationException(thrift.PROTOCOL_ERROR, "boom").Write(ctx, p))
	} else {
		writeArgs(t, p)
	}
	must(t, p.WriteMessageEnd(ctx))
	must(t, p.Flush(ctx))
	return append([]byte(nil), mem.Bytes()...)
}

func writeArgs(t testing.TB, p thrift.TProtocol) {
	must(t, p.WriteStructBegin(ctx, "args"))
	must(t, p.WriteFieldBegin(ctx, "name", thrift.STRING, 1))
	must(t, p.WriteString(ctx, "world"))
	must(t, p.WriteFieldEnd(ctx))
	must(t, p.WriteFieldBegin(ctx, "count", thrift.I32, 2))
	must(t, p.WriteI32(ctx, 42))
	must(t, p.WriteFieldEnd(ctx))
	must(t, p.WriteFieldBegin(ctx, "tags", thrift.LIST, 3))
	must(t, p.WriteListBegin(ctx, thrift.STRING, 2))
	must(t, p.WriteString(ctx, "a"))
	must(t, p.WriteString(ctx, "bc"))
	must(t, p.WriteListEnd(ctx))
	must(t, p.WriteFieldEnd(ctx))
	must(t, p.WriteFieldStop(ctx))
	must(t, p.WriteStructEnd(ctx))
}

// read is what the library reads back from a frame.
type read struct {
	name    string
	typ     thrift.TMessageType
	seq     int32
	headers map[string]string
	args    []any // the argument fields in order
	exc     thrift.TApplicationException
}

// readBack reads one message from b with the library's stack for c.
func readBack(t testing.TB, c combo, b []byte) read {
	t.Helper()
	mem := thrift.NewTMemoryBuffer()
	mem.Write(b)
	p := newProto(c, mem)
	var r read
	var err error
	r.name, r.typ, r.seq, err = p.ReadMessageBegin(ctx)
	must(t, err)
	if hp, ok := p.(*thrift.THeaderProtocol); ok {
		r.headers = maps.Clone(map[string]string(hp.GetReadHeaders()))
	}
	if r.typ == thrift.EXCEPTION {
		r.exc = thrift.NewTApplicationException(0, "")
		must(t, r.exc.(interface {
			Read(context.Context, thrift.TProtocol) error
		}).Read(ctx, p))
	} else {
		r.args = readArgs(t, p)
	}
	must(t, p.ReadMessageEnd(ctx))
	if mem.Len() != 0 {
		t.Fatalf("%d bytes left after the message", mem.Len())
	}
	return r
}

func readArgs(t testing.TB, p thrift.TProtocol) []any {
	_, err := p.ReadStructBegin(ctx)
	must(t, err)
	var out []any
	for {
		_, typ, _, err := p.ReadFieldBegin(ctx)
		must(t, err)
		switch typ {
		case thrift.STOP:
			must(t, p.ReadStructEnd(ctx))
			return out
		case thrift.STRING:
			s, err := p.ReadString(ctx)
			must(t, err)
			out = append(out, s)
		case thrift.I32:
			v, err := p.ReadI32(ctx)
			must(t, err)
			out = append(out, v)
		case thrift.LIST:
			_, n, err := p.ReadListBegin(ctx)
			must(t, err)
			for range n {
				s, err := p.ReadString(ctx)
				must(t, err)
				out = append(out, s)
			}
			must(t, p.ReadListEnd(ctx))
		default:
			t.Fatalf("unexpected field type %v", typ)
		}
		must(t, p.ReadFieldEnd(ctx))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newCodec(t testing.TB, cfg string) *Codec {
	t.Helper()
	c, err := New([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Codec)
}

// decode decodes all of b as one frame.
func decode(t testing.TB, c *Codec, b []byte) *protocols.Message {
	t.Helper()
	msg := &protocols.Message{}
	n, err := c.Decode(b, msg)
	if err != nil || n != len(b) {
		t.Fatalf("Decode = %d, %v; want %d", n, err, len(b))
	}
	return msg
}

func header(msg *protocols.Message, key string) string {
	v, _ := msg.Headers.Get(key)
	return v
}
