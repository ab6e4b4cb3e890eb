// Command thrift-server is a real apache/thrift Go server for the demo: it
// serves echo.thrift's Echo and Admin services (see package thrift) under a
// name (its version), which every reply starts with.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/metamesh/metamesh/testdata/peers/thrift"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9091", "listen address")
	name := flag.String("version", "v1", "name the replies carry")
	transport := flag.String("transport", "header", "framed, buffered or header")
	protocol := flag.String("protocol", "binary", "binary or compact")
	flag.Parse()

	_, stop, err := thrift.Serve(*name, *addr, thrift.Combo{Transport: *transport, Protocol: *protocol})
	if err != nil {
		fmt.Fprintln(os.Stderr, "thrift-server:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	stop()
}
