package mtls

// recordHandshake is the first byte of a TLS connection: a handshake
// record carrying the ClientHello. No meta-protocol frame starts with it
// (Dubbo 0xda, Thrift 0x80/0x82 or a frame length under 16 MiB, Redis a
// RESP type or an inline command's letter, Triple the HTTP/2 preface's
// 'P').
const recordHandshake = 0x16

// IsTLS reports whether first, a client's first byte (wire.Peek), opens a
// TLS handshake.
func IsTLS(first byte) bool { return first == recordHandshake }
