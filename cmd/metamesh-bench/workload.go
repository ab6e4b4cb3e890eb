package main

import (
	"fmt"
	"strings"

	"github.com/metamesh/metamesh/protocols"
)

// serverVersion is the name both servers are started with; every reply
// must be serverVersion + "|" + the request's argument.
const serverVersion = "v1"

// workload is one protocol's echo call: the server that answers it, the
// proxy listener in front of it, and how the bench writes a request and
// reads the reply. The run, the measurements and the report are shared.
type workload struct {
	name   string // -protocols value and report label
	title  string // what is called, and on what, for the report
	server string // the server binary's name: its flag is -<name>-server

	// serverArgs are the server's flags to listen on addr.
	serverArgs func(addr string) []string
	// ready is the stdout line prefix the server prints once it accepts
	// calls; empty when it prints none and is waited for by dialing.
	ready string

	// The proxy listener: its codec, the service requests are routed by
	// (the virtual host's domain) and, for a protocol whose requests may
	// name none, the listener's default_service.
	codec, service, defaultService string

	// newCodec returns the codec that splits the server's replies into
	// frames (the registered codec with its default config).
	newCodec func() (protocols.Codec, error)
	// request returns a request frame with ID 0 and the argument arg.
	request func(arg string) []byte
	// idOff and idLen locate the big-endian request ID in a request.
	idOff, idLen int
	// replyValue returns the string a reply carries, or why it carries
	// none (an error status, an exception, a malformed frame).
	replyValue func(reply *protocols.Message) (string, error)
}

// workloads are the protocols the bench knows, in report order.
var workloads = []*workload{dubboWorkload, thriftWorkload}

// parseProtocols returns the workloads named in a comma-separated list.
func parseProtocols(list string) ([]*workload, error) {
	var ws []*workload
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		w := findWorkload(name)
		if w == nil {
			return nil, fmt.Errorf("-protocols: unknown protocol %q (known: %s)", name, knownProtocols())
		}
		for _, prev := range ws {
			if prev == w {
				return nil, fmt.Errorf("-protocols: %s listed twice", name)
			}
		}
		ws = append(ws, w)
	}
	return ws, nil
}

func findWorkload(name string) *workload {
	for _, w := range workloads {
		if w.name == name {
			return w
		}
	}
	return nil
}

// knownProtocols is the default -protocols value: every workload.
func knownProtocols() string {
	names := make([]string, len(workloads))
	for i, w := range workloads {
		names[i] = w.name
	}
	return strings.Join(names, ",")
}
