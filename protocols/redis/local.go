package redis

import (
	"bytes"
	"crypto/subtle"
	"strconv"

	"github.com/metamesh/metamesh/protocols"
)

// Session is what the proxy keeps per client connection for the commands
// it answers itself. The zero value is a new connection: RESP2, not
// authenticated, no name.
type Session struct {
	// Protocol is the RESP version the client chose with HELLO: 2 (or
	// 0, the same) or 3. Upstream replies must come in this version.
	Protocol int
	// Authenticated is set by a good AUTH (or HELLO … AUTH) and cleared
	// by RESET. It matters only when the codec has a password.
	Authenticated bool
	// Name is the client name from CLIENT SETNAME or HELLO … SETNAME.
	Name string
	// DB is the database SELECT chose (0 until then, and after RESET).
	DB int
}

// Action is what the proxy does with a request after Local.
type Action uint8

// The actions.
const (
	// Forward: Local appended nothing; route the request by its class.
	Forward Action = iota
	// Replied: the reply is appended; the request goes no further.
	Replied
	// ReplyAndClose: the reply is appended; close the connection once it
	// is written (QUIT).
	ReplyAndClose
)

// ServerVersion is the Redis version HELLO reports: the command set the
// proxy knows (clients may gate features on it).
const ServerVersion = "7.0.0"

// Local answers req (a request decoded by this codec) when the proxy
// answers it itself, appending the reply to dst:
//   - with a password configured, before authentication, every command
//     but AUTH, HELLO and QUIT gets -NOAUTH, as from redis-server;
//   - connection commands (ClassLocal): PING, ECHO, QUIT, SELECT,
//     HELLO, AUTH, RESET, CLIENT SETNAME/GETNAME/SETINFO, updating s;
//   - refusals: a command not in the table, ClassUnsupported commands
//     and MONITOR (-ERR metamesh: …), and a wrong number of
//     arguments (-ERR wrong number of arguments…, Redis's words).
//
// Everything else (plain, split, transaction, blocking and pub/sub
// commands) is left to the proxy: Forward.
func (c *Codec) Local(dst []byte, s *Session, req *protocols.Message) ([]byte, Action) {
	cmd, known := CommandOf(req)
	argc := req.Marks[markArgc]
	authed := c.password == "" || s.Authenticated
	if known && authed && cmd.Class != ClassLocal && cmd.Class != ClassUnsupported &&
		cmd.Class != ClassPubSub && cmd.ArityOK(argc) {
		return dst, Forward // the hot path: no argument is read
	}
	var small [8][]byte
	args, err := Args(small[:0], req.Raw)
	if err != nil || len(args) == 0 {
		return AppendError(dst, "request not decoded by the redis codec"), Replied
	}
	if !authed && !(known && (cmd.Name == "auth" || cmd.Name == "hello" || cmd.Name == "quit")) {
		return append(dst, "-NOAUTH Authentication required.\r\n"...), Replied
	}
	switch {
	case !known:
		return AppendError(dst, "unknown or unsupported command '"+printable(args[0])+"'"), Replied
	case cmd.Class == ClassUnsupported:
		return AppendError(dst, "command '"+displayName(cmd, args)+"' is not supported by the proxy"), Replied
	case cmd.Name == "monitor":
		return AppendError(dst, "pub/sub command 'monitor' is not supported by the proxy: connect to Redis directly"), Replied
	case !cmd.ArityOK(argc):
		return appendArityError(dst, cmd.Name), Replied
	case cmd.Class != ClassLocal:
		return dst, Forward
	}
	return c.answer(dst, s, cmd.Name, args)
}

// answer answers the connection command name with args.
func (c *Codec) answer(dst []byte, s *Session, name string, args [][]byte) ([]byte, Action) {
	switch name {
	case "ping":
		if len(args) > 2 {
			return appendArityError(dst, name), Replied
		}
		if len(args) == 2 {
			return appendBulk(dst, args[1]), Replied
		}
		return append(dst, "+PONG\r\n"...), Replied
	case "echo":
		return appendBulk(dst, args[1]), Replied
	case "quit":
		return append(dst, "+OK\r\n"...), ReplyAndClose
	case "select":
		return c.appendSelect(dst, s, args[1]), Replied
	case "auth":
		return c.auth(dst, s, args), Replied
	case "hello":
		return c.hello(dst, s, args), Replied
	case "reset":
		*s = Session{}
		return append(dst, "+RESET\r\n"...), Replied
	case "client|setname":
		if !validName(args[2]) {
			return append(dst, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"...), Replied
		}
		s.Name = string(args[2])
		return append(dst, "+OK\r\n"...), Replied
	case "client|getname":
		if s.Name == "" {
			return appendNull(dst, s), Replied
		}
		return appendBulk(dst, []byte(s.Name)), Replied
	case "client|setinfo":
		if !bytes.EqualFold(args[2], []byte("lib-name")) && !bytes.EqualFold(args[2], []byte("lib-ver")) {
			return append(dst, "-ERR Unrecognized option '"+printable(args[2])+"'\r\n"...), Replied
		}
		return append(dst, "+OK\r\n"...), Replied
	}
	return AppendError(dst, "command '"+name+"' has no local answer"), Replied
}

// appendSelect answers SELECT db: any database below the configured
// count (redis-server's words for the others) becomes the session's,
// and its later commands go to upstream connections of that database
// (Variant).
func (c *Codec) appendSelect(dst []byte, s *Session, db []byte) []byte {
	n, err := strconv.Atoi(string(db))
	switch {
	case err != nil:
		return append(dst, "-ERR value is not an integer or out of range\r\n"...)
	case n < 0 || n >= c.databases:
		return append(dst, "-ERR DB index is out of range\r\n"...)
	}
	s.DB = n
	return append(dst, "+OK\r\n"...)
}

// auth answers AUTH [username] password.
func (c *Codec) auth(dst []byte, s *Session, args [][]byte) []byte {
	if len(args) > 3 {
		return append(dst, "-ERR syntax error\r\n"...)
	}
	if c.password == "" && len(args) == 2 {
		return append(dst, "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"...)
	}
	user := []byte("default")
	if len(args) == 3 {
		user = args[1]
	}
	if !c.checkPassword(user, args[len(args)-1]) {
		return append(dst, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"...)
	}
	s.Authenticated = true
	return append(dst, "+OK\r\n"...)
}

// checkPassword reports whether user and password are the configured
// ones (any password for "default" when none is configured, as
// redis-server's nopass default user), in constant time.
func (c *Codec) checkPassword(user, password []byte) bool {
	if c.password == "" {
		return string(user) == "default"
	}
	u := subtle.ConstantTimeCompare(user, []byte(c.username))
	p := subtle.ConstantTimeCompare(password, []byte(c.password))
	return u&p == 1
}

// hello answers HELLO [protover [AUTH username password] [SETNAME name]].
func (c *Codec) hello(dst []byte, s *Session, args [][]byte) []byte {
	proto := max(s.Protocol, 2)
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return append(dst, "-ERR Protocol version is not an integer or out of range\r\n"...)
		}
		if v != 2 && (v != 3 || !c.resp3) {
			return append(dst, "-NOPROTO unsupported protocol version\r\n"...)
		}
		proto = v
	}
	var user, pass, name []byte
	auth, setName := false, false
	for i := 2; i < len(args); i++ {
		switch {
		case bytes.EqualFold(args[i], []byte("auth")) && i+2 < len(args):
			auth, user, pass = true, args[i+1], args[i+2]
			i += 2
		case bytes.EqualFold(args[i], []byte("setname")) && i+1 < len(args):
			setName, name = true, args[i+1]
			i++
		default:
			return append(dst, "-ERR Syntax error in HELLO option '"+printable(args[i])+"'\r\n"...)
		}
	}
	if auth && !c.checkPassword(user, pass) {
		return append(dst, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"...)
	}
	if !auth && c.password != "" && !s.Authenticated {
		return append(dst, "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"...)
	}
	if setName && !validName(name) {
		return append(dst, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"...)
	}
	if auth {
		s.Authenticated = true
	}
	if setName {
		s.Name = string(name)
	}
	s.Protocol = proto
	return appendHelloReply(dst, proto)
}

// appendHelloReply appends HELLO's map describing the proxy: a RESP3 map,
// or in RESP2 an array of keys and values.
func appendHelloReply(dst []byte, proto int) []byte {
	if proto == 3 {
		dst = appendLen(dst, '%', 7)
	} else {
		dst = appendLen(dst, '*', 14)
	}
	for _, kv := range [][2]string{{"server", "metamesh"}, {"version", ServerVersion}} {
		dst = appendBulk(appendBulk(dst, []byte(kv[0])), []byte(kv[1]))
	}
	dst = appendLen(appendBulk(dst, []byte("proto")), ':', proto)
	dst = appendLen(appendBulk(dst, []byte("id")), ':', 0)
	for _, kv := range [][2]string{{"mode", "standalone"}, {"role", "master"}} {
		dst = appendBulk(appendBulk(dst, []byte(kv[0])), []byte(kv[1]))
	}
	return appendLen(appendBulk(dst, []byte("modules")), '*', 0)
}

// appendNull appends a null in the session's protocol.
func appendNull(dst []byte, s *Session) []byte {
	if s.Protocol == 3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// appendArityError appends Redis's own wrong-arity error.
func appendArityError(dst []byte, name string) []byte {
	return append(dst, "-ERR wrong number of arguments for '"+name+"' command\r\n"...)
}

// validName reports whether a client name is one redis-server accepts:
// printable ASCII without spaces.
func validName(b []byte) bool {
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// displayName is how a refused command is named: "config get" for a
// container's subcommand.
func displayName(cmd Command, args [][]byte) string {
	if cmd.container && len(args) > 1 {
		return cmd.Name + " " + printable(args[1])
	}
	if cmd.attr != cmd.Name {
		return cmd.attr + " " + cmd.Name[len(cmd.attr)+1:]
	}
	return cmd.Name
}

// printable returns b, lower-cased and cut short, with anything but
// printable ASCII (and quotes) shown as '?', for error messages.
func printable(b []byte) string {
	out := []byte(string(clip(b, maxUnknownName)))
	for i, c := range out {
		switch {
		case 'A' <= c && c <= 'Z':
			out[i] = c + 'a' - 'A'
		case c < ' ' || c > '~' || c == '\'':
			out[i] = '?'
		}
	}
	return string(out)
}

// AppendAuth appends the AUTH request the proxy sends on a new upstream
// connection for a cluster with a password: AUTH password, or AUTH
// username password when username is set.
func AppendAuth(dst []byte, username, password string) []byte {
	if username == "" {
		return AppendCommand(dst, []byte("AUTH"), []byte(password))
	}
	return AppendCommand(dst, []byte("AUTH"), []byte(username), []byte(password))
}

// AppendHello appends HELLO protocol [AUTH username password], which
// switches a new upstream connection to RESP protocol (2 or 3) and, with
// a password, authenticates it (username "" means "default").
func AppendHello(dst []byte, protocol int, username, password string) []byte {
	v := []byte(strconv.Itoa(protocol))
	if password == "" {
		return AppendCommand(dst, []byte("HELLO"), v)
	}
	if username == "" {
		username = "default"
	}
	return AppendCommand(dst, []byte("HELLO"), v, []byte("AUTH"), []byte(username), []byte(password))
}
