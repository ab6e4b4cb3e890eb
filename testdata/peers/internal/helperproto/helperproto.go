// Package helperproto holds the net/rpc messages between dubboclient and
// its helper process (internal/cmd/dubboclient-helper), which hosts the
// dubbo-go consumer when dubboclient runs out of process.
package helperproto

import "time"

// Service is the net/rpc service name.
const Service = "DubboClient"

// Options mirror dubboclient.Options.
type Options struct {
	Timeout         time.Duration
	Connections     int
	HeartbeatPeriod time.Duration
	MaxMsgLen       int
	LogLevel        string
	Version         string
}

// DialArgs open a consumer; the reply is its id.
type DialArgs struct {
	Addr  string
	Iface string
	Opts  Options
}

// Arg is one call argument: a string or, with IsInt, an int32.
type Arg struct {
	Str   string
	Int   int32
	IsInt bool
}

// CallArgs make one call on consumer ID; the reply is the string result.
type CallArgs struct {
	ID          int
	Method      string
	Args        []Arg
	Oneway      bool
	Attachments map[string]string
	Timeout     time.Duration
}
