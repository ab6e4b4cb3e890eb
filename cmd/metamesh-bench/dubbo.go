package main

import (
	"fmt"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
)

// The greeter-server's interface and method (see its main.go).
const (
	greeterInterface = "org.apache.dubbo.samples.api.GreetingsService"
	greeterMethod    = "SayHello"
)

// dubboWorkload calls GreetingsService.SayHello(name) on a dubbo-go
// provider, testdata/peers/cmd/greeter-server.
var dubboWorkload = &workload{
	name:   "dubbo",
	title:  "Dubbo GreetingsService.SayHello on dubbo-go (greeter-server)",
	server: "greeter-server",
	serverArgs: func(addr string) []string {
		return []string{"--addr", addr, "--version", serverVersion, "--log-level", "warn"}
	},
	ready:    "ready ",
	codec:    dubbo.Name,
	service:  greeterInterface,
	newCodec: func() (protocols.Codec, error) { return dubbo.New(nil) },
	request:  dubboRequest,
	idOff:    4, // the 8-byte request ID follows magic, flags and status
	idLen:    8,
	replyValue: func(reply *protocols.Message) (string, error) {
		status, value, err := dubbo.ParseResponseValue(reply.Raw)
		if err == nil && status != dubbo.StatusOK {
			err = fmt.Errorf("status %d: %.200s", status, value)
		}
		return value, err
	},
}

// dubboRequest is a SayHello(name) request as dubbo-go writes it.
func dubboRequest(name string) []byte {
	return dubbo.AppendRequest(nil, dubbo.Request{
		TwoWay:  true,
		Service: greeterInterface,
		Method:  greeterMethod,
		Args:    []string{name},
		Attachments: []protocols.Header{
			{Key: "path", Value: greeterInterface},
			{Key: "interface", Value: greeterInterface},
		},
	})
}
