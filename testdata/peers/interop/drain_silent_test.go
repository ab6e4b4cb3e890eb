package interop

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// TestShutdownClosesSilentClients: a client connected to a PERMISSIVE
// listener that has sent nothing yet waits in the proxy's first-byte
// peek (TLS or plaintext?); the proxy's shutdown closes it (it has no
// request to drain) rather than leaving it open until --idle-timeout.
func TestShutdownClosesSilentClients(t *testing.T) {
	t.Parallel()
	listen := harness.FreeAddr(t)
	srv := applyConfigDir(t, greeterEntry(listen, harness.FreeAddr(t)))
	silent, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A second client's heartbeat answered: the listener accepted the
	// silent one, connected first, before it.
	talker, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	_ = talker.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := talker.Write(dubbo.AppendHeartbeat(nil, 1)); err != nil {
		t.Fatal(err)
	}
	var hdr [16]byte
	if _, err := io.ReadFull(talker, hdr[:]); err != nil {
		t.Fatalf("heartbeat reply: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = silent.Read(hdr[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("the silent client's read after shutdown: %v, want the connection closed", err)
	}
}
