// Package protocols is the codec API of metamesh: the contract between the
// generic meta-protocol proxy and one wire protocol.
//
// A codec turns the bytes of one frame into a Message (kind, request ID, a
// small header map of routing attributes, and the raw frame) and back. The
// proxy routes on the headers and forwards the raw bytes, asking the codec
// to patch only what it must: the request ID on a shared upstream
// connection, and headers set by mutation rules. Arguments and payloads are
// never deserialized.
//
// A codec package registers a Factory under its protocol name from init:
//
//	func init() { protocols.MustRegister("dubbo", New) }
//
// The rules every codec follows:
//   - Decode never blocks, never retains buf, and returns (0, nil) when buf
//     holds less than one whole frame. A frame that can never be valid is an
//     error; the proxy closes that one connection and counts it.
//   - Header strings must not alias buf: the proxy reuses its read buffer.
//   - Encode, ErrorReply and HeartbeatReply append to dst and return it.
//   - Decode must classify a frame in either direction (a request from a
//     client, a response from an upstream). A protocol whose replies can
//     look like requests (Redis) also implements ResponseDecoder.
//   - Pipelined codecs get replies back to each client in request order;
//     multiplexed ones in whatever order upstreams answer.
//   - A Codec value is shared by every connection of a listener and must be
//     safe for concurrent use; per-frame facts live in the Message.
package protocols
