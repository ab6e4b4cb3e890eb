package interop

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// TestRunKeepsSilentClients: `metamesh run`'s listeners peek at a client's
// first byte (the default PERMISSIVE mutual TLS mode). A client that
// connects and says nothing for longer than the frame timeout, as a
// connection pool's spare connection does, is idle, not slow: it is served
// when it speaks (it was closed after the frame timeout before).
func TestRunKeepsSilentClients(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	v1, v2 := greeters(t)
	c := &runConfig{Iface: iface, W1: 80, W2: 20, dir: t.TempDir(), listen: harness.FreeAddr(t), adminAddr: harness.FreeAddr(t), stderr: &harness.SyncBuffer{}}
	c.Port, c.V1, c.V2 = portOf(c.listen), portOf(v1.Addr), portOf(v2.Addr)
	c.write(t)
	startRun(t, bin, c.dir, c.adminAddr, c.listen, c.stderr, "--frame-timeout", "1s")

	nc, err := net.Dial("tcp", c.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	time.Sleep(2500 * time.Millisecond) // silent past the 1 s frame timeout
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(dubbo.AppendHeartbeat(nil, 7)); err != nil {
		t.Fatalf("a heartbeat after 2.5 s of silence: %v", err)
	}
	var hdr [16]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		t.Fatalf("no heartbeat reply after 2.5 s of silence: %v", err)
	}
	if id := binary.BigEndian.Uint64(hdr[4:12]); hdr[0] != 0xda || hdr[1] != 0xbb || id != 7 {
		t.Fatalf("reply header % x, want a Dubbo frame for request 7", hdr)
	}
}
