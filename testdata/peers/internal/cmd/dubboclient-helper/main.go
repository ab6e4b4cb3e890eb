// Command dubboclient-helper hosts dubbo-go consumers for
// github.com/metamesh/metamesh/testdata/peers/dubboclient when it runs out of
// process (always under the race detector: dubbo-go v3.3.0 and getty have
// data races of their own that would fail every test of the caller).
//
// It listens on a free 127.0.0.1 port, prints "ready <addr>" and serves
// net/rpc there; it exits when its standard input is closed (its parent
// died or closed it).
package main

import (
	"fmt"
	"io"
	"net"
	"os"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dubboclient-helper:", err)
		os.Exit(1)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	fmt.Printf("ready %s\n", ln.Addr())
	if err := dubboclient.ServeHelper(ln); err != nil {
		fmt.Fprintln(os.Stderr, "dubboclient-helper:", err)
		os.Exit(1)
	}
}
