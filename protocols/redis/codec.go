// Package redis is the codec for Redis's RESP protocol: client commands
// (multibulk arrays of bulk strings, RESP2 or RESP3, and inline command
// lines) and every RESP2 and RESP3 reply. Requests expose the command,
// its first key and whether it is read-only; a command table says how the
// proxy treats each command (forward, split and merge, answer locally,
// dedicated connection, refuse), and the package gives the proxy the
// helpers those need. See README.md.
package redis

import (
	"fmt"
	"math"
	"strings"

	"github.com/metamesh/metamesh/protocols"
)

// Name is the protocol name the codec registers under.
const Name = "redis"

func init() { protocols.MustRegister(Name, New) }

// The request attributes (docs/reference.md, Attributes).
const (
	AttrCommand  = "command"
	AttrKey      = "key"
	AttrReadonly = "readonly"
)

// Limits.
const (
	// DefaultMaxFrameBytes bounds a request or reply frame: redis-server's
	// own bulk string limit (proto-max-bulk-len), so the proxy refuses
	// nothing the server would take.
	DefaultMaxFrameBytes = 512 << 20
	// DefaultMaxArgs bounds the arguments of a request.
	DefaultMaxArgs = 1 << 20
)

// Codec is the Redis codec. It holds only its configuration, so one value
// serves any number of connections concurrently; per-connection state
// lives in a Session.
type Codec struct {
	max      int
	maxArgs  int
	username string
	password string
	resp3    bool
	// upstream is the AUTH request sent on every upstream connection
	// (nil: none).
	upstream []byte
	// setup holds the requests a variant (Variant) sends on every new
	// upstream connection after the AUTH: READONLY, SELECT n; setupN
	// counts them.
	setup    []byte
	setupN   int
	variants *variants // shared by a codec and its variants
}

// config is the JSON configuration New accepts.
type config struct {
	MaxFrameBytes *int64  `json:"maxFrameBytes"`
	MaxArgs       *int64  `json:"maxArgs"`
	Username      *string `json:"username"`
	Password      *string `json:"password"`
	RESP3         *bool   `json:"resp3"`
	UpstreamUser  *string `json:"upstreamUsername"`
	UpstreamPass  *string `json:"upstreamPassword"`
}

// New builds a codec from its JSON configuration (nil or empty for the
// defaults): {"maxFrameBytes": N (default 512 MiB), "maxArgs": N (default
// 1048576), "password": "…" (clients must AUTH; default none),
// "username": "…" (default "default"), "resp3": true (answer HELLO 3;
// default false), "upstreamPassword": "…", "upstreamUsername": "…" (the
// proxy's AUTH on every upstream connection; default none)}.
func New(cfg []byte) (protocols.Codec, error) {
	c := &Codec{max: DefaultMaxFrameBytes, maxArgs: DefaultMaxArgs, username: "default"}
	c.variants = &variants{base: c}
	var conf config
	if err := protocols.DecodeConfig(cfg, &conf); err != nil {
		return nil, fmt.Errorf("redis: config: %w", err)
	}
	if m := conf.MaxFrameBytes; m != nil {
		if *m < 64 || *m > math.MaxInt32 {
			return nil, fmt.Errorf("redis: config: maxFrameBytes must be in 64..%d, got %d", math.MaxInt32, *m)
		}
		c.max = int(*m)
	}
	if m := conf.MaxArgs; m != nil {
		if *m < 1 || *m > math.MaxInt32 {
			return nil, fmt.Errorf("redis: config: maxArgs must be in 1..%d, got %d", math.MaxInt32, *m)
		}
		c.maxArgs = int(*m)
	}
	if p := conf.Password; p != nil {
		if *p == "" {
			return nil, fmt.Errorf("redis: config: password is empty (leave it out for no password)")
		}
		c.password = *p
	}
	if u := conf.Username; u != nil {
		if *u == "" || strings.ContainsAny(*u, " \r\n") {
			return nil, fmt.Errorf("redis: config: username %q is empty or holds a space or line break", *u)
		}
		if c.password == "" {
			return nil, fmt.Errorf("redis: config: username without a password")
		}
		c.username = *u
	}
	if r := conf.RESP3; r != nil {
		c.resp3 = *r
	}
	if p := conf.UpstreamPass; p != nil {
		if *p == "" {
			return nil, fmt.Errorf("redis: config: upstreamPassword is empty (leave it out for no password)")
		}
		user := ""
		if u := conf.UpstreamUser; u != nil {
			user = *u
		}
		c.upstream = AppendAuth(nil, user, *p)
	} else if conf.UpstreamUser != nil {
		return nil, fmt.Errorf("redis: config: upstreamUsername without an upstreamPassword")
	}
	return c, nil
}

// Handshake appends the AUTH the proxy sends on every new upstream
// connection when upstreamPassword is configured
// (protocols.Handshaker).
func (c *Codec) Handshake(dst []byte) ([]byte, int) {
	n := c.setupN
	if c.upstream != nil {
		dst = append(dst, c.upstream...)
		n++
	}
	return append(dst, c.setup...), n
}

// Model reports that Redis answers the commands of a connection in order.
func (c *Codec) Model() protocols.Model { return protocols.Pipelined }

// Encode appends msg's frame unchanged: Redis frames carry no request ID
// (replies pair by order) and no place for headers, so id and set are
// ignored.
func (c *Codec) Encode(dst []byte, msg *protocols.Message, _ uint64, _ []protocols.Header) ([]byte, error) {
	if len(msg.Raw) == 0 {
		return dst, fmt.Errorf("redis: encode: message holds no frame")
	}
	return append(dst, msg.Raw...), nil
}

// ErrorReply appends `-ERR metamesh: <reason>: <text>` (docs/reference.md,
// Error replies) on one line: the reason phrase is "no route", "no healthy
// upstream", "timeout" or "rate limited" (for rate limits and overloads
// alike, as the reference has it); text follows unless it is empty, with a leading
// "metamesh: " dropped and line breaks made spaces. A request an
// authorization policy denied gets `-NOPERM metamesh: <text>`, the error
// code redis-server gives a user its ACL refuses.
func (c *Codec) ErrorReply(dst []byte, _ *protocols.Message, reason protocols.Reason, text string) []byte {
	text = strings.TrimPrefix(text, "metamesh: ")
	if reason == protocols.ReasonDenied {
		if text == "" {
			text = "denied"
		}
		dst = append(dst, "-NOPERM metamesh: "...)
		return appendLine(dst, text)
	}
	phrase := reasonPhrase(reason)
	if text == "" || text == phrase {
		return AppendError(dst, phrase)
	}
	return AppendError(dst, phrase+": "+text)
}

func reasonPhrase(reason protocols.Reason) string {
	switch reason {
	case protocols.ReasonNoRoute:
		return "no route"
	case protocols.ReasonTimeout:
		return "timeout"
	case protocols.ReasonOverloaded, protocols.ReasonRateLimited:
		return "rate limited"
	}
	return "no healthy upstream" // and any reason added later
}

// AppendError appends the error reply `-ERR metamesh: <text>`, with any
// CR or LF in text made a space.
func AppendError(dst []byte, text string) []byte {
	dst = append(dst, "-ERR metamesh: "...)
	return appendLine(dst, text)
}

// appendLine appends text with line breaks made spaces, and CRLF.
func appendLine(dst []byte, text string) []byte {
	for i := 0; i < len(text); i++ {
		b := text[i]
		if b == '\r' || b == '\n' {
			b = ' '
		}
		dst = append(dst, b)
	}
	return append(dst, '\r', '\n')
}

// HeartbeatReply appends +PONG. Redis has no heartbeat frames: Decode
// never yields KindHeartbeat, and PING is answered by Local (with its
// argument, and NOAUTH before AUTH). +PONG keeps a pipelined client's
// replies in step should the proxy call this anyway.
func (c *Codec) HeartbeatReply(dst []byte, _ *protocols.Message) []byte {
	return append(dst, "+PONG\r\n"...)
}

var _ protocols.Codec = (*Codec)(nil)
