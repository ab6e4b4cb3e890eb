package main

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

func TestRequestTemplate(t *testing.T) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			tmpl, err := newRequestTemplate(w, 40)
			if err != nil {
				t.Fatal(err)
			}
			codec, err := w.newCodec()
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []uint64{0, 1, 0xdeadbeef, tmpl.maxID} {
				frame := tmpl.appendRequest(nil, id)
				var m protocols.Message
				n, err := codec.Decode(frame, &m)
				if err != nil || n != len(frame) {
					t.Fatalf("decode: %d of %d, %v", n, len(frame), err)
				}
				method, _ := m.Headers.Get("method")
				if m.ID != id || m.Kind != protocols.KindRequest || method != echoPeers[w.name].method {
					t.Errorf("decoded id %d kind %s method %q", m.ID, m.Kind, method)
				}
				if svc, _ := m.Headers.Get("service"); w.name == "dubbo" && svc != greeterInterface {
					t.Errorf("service %q", svc)
				}
				arg, err := echoPeers[w.name].arg(&m)
				if err != nil {
					t.Fatal(err)
				}
				if len(arg) != 40 || !tmpl.checkArg(arg, id) || tmpl.checkArg(arg, id+1) {
					t.Errorf("id %d: argument %q", id, arg)
				}
			}
		})
	}
	if tmpl, _ := newRequestTemplate(thriftWorkload, 0); tmpl.maxID != 1<<32-1 {
		t.Errorf("thrift maxID %#x", tmpl.maxID)
	}
}

// IDs wrap before they overflow the template's ID field, and each stays
// in its slot.
func TestIDsWrap(t *testing.T) {
	const pipeline = 3
	tmpl := &requestTemplate{frame: make([]byte, 2), idOff: 1, idLen: 1, maxID: 0xff}
	var phase atomic.Int32
	c := newLoadConn(nil, thriftWorkload, nil, tmpl, pipeline, "", &phase)
	// The k-th send's ID is seq*pipeline+slot, seq counting sends modulo
	// 85: the most whose IDs (up to 84*3+2 = 254) fit in a byte.
	for k := range 1000 {
		i := k % pipeline
		c.wbuf = c.wbuf[:0]
		c.send(i, time.Now())
		id := c.slots[i].id
		if want := uint64(k%85*pipeline + i); id != want || c.wbuf[1] != byte(id) {
			t.Fatalf("send %d: id %d in slot %d, want %d; frame %x", k, id, i, want, c.wbuf)
		}
	}
}
