package redis

import (
	"bytes"
	"strconv"
	"strings"
)

// Class is how the proxy treats a command.
type Class uint8

// The command classes. README.md lists every command by class.
const (
	// ClassPlain commands are forwarded on a shared pipeline to the
	// upstream their first key routes to (keyless ones by the other
	// attributes alone).
	ClassPlain Class = iota + 1
	// ClassSplit commands take several independent keys (MGET, MSET, DEL,
	// EXISTS, UNLINK, TOUCH): the proxy may split them by destination and
	// merge the replies (Command.Merge says how).
	ClassSplit
	// ClassTransaction commands (MULTI, EXEC, DISCARD, WATCH, UNWATCH)
	// need the client pinned to one upstream connection until EXEC,
	// DISCARD or UNWATCH ends the transaction.
	ClassTransaction
	// ClassBlocking commands (BLPOP…, XREAD with BLOCK, WAIT) may hold
	// their connection for their whole timeout: never on a shared
	// pipeline.
	ClassBlocking
	// ClassPubSub commands turn the connection into a push stream
	// (SUBSCRIBE…: pubsub.go; MONITOR: refused).
	ClassPubSub
	// ClassLocal commands are about the client connection and are
	// answered by the proxy (Codec.Local).
	ClassLocal
	// ClassUnsupported commands can't be proxied meaningfully (server
	// administration, whole-keyspace commands, scripts and functions
	// management, cluster): refused with a clear error.
	ClassUnsupported
)

var classNames = [...]string{"", "plain", "split", "transaction", "blocking", "pubsub", "local", "unsupported"}

func (c Class) String() string {
	if int(c) < len(classNames) && c != 0 {
		return classNames[c]
	}
	return "unknown"
}

// Merge is how the replies of a split command's parts make its reply.
type Merge uint8

// The merge kinds of split commands.
const (
	MergeNone     Merge = iota // not a split command
	MergeSum                   // integers summed (DEL, EXISTS, UNLINK, TOUCH): MergeIntegers
	MergeKeyOrder              // array elements put back in key order (MGET): MergeArray
	MergeAllOK                 // +OK when every part said +OK (MSET): MergeOK
)

// KeySpec says where a command's keys are, in argument positions counting
// the command name as 0 (Redis's COMMAND INFO convention).
type KeySpec struct {
	// First, Last and Step describe a run of keys: positions First,
	// First+Step, … up to Last. A negative Last counts from the end (-1
	// is the last argument). First 0 means no run.
	First, Last, Step int
	// NumKeys is the position of a numkeys argument followed by that many
	// keys (EVAL, ZUNION, LMPOP…), 0 if none. The run, if any, comes
	// first (ZUNIONSTORE's destination).
	NumKeys int
	// Streams marks XREAD and XREADGROUP: the keys are the first half of
	// the arguments after the STREAMS keyword.
	Streams bool
}

// Command describes one Redis command (or container subcommand).
type Command struct {
	// Name is the lower-case name; a subcommand is "container|sub"
	// ("object|encoding"), as in COMMAND INFO.
	Name string
	// Arity is Redis's: N means exactly N arguments (with the name), -N
	// at least N.
	Arity int
	// Readonly is Redis's readonly flag: the command never writes, so a
	// replica may serve it.
	Readonly bool
	// Class is how the proxy treats the command.
	Class Class
	// Keys locates the key arguments.
	Keys KeySpec
	// Merge is how a split command's replies merge (ClassSplit only).
	Merge Merge
	// attr is the command attribute: Name without any "|sub".
	attr string
	// container marks a command whose meaning depends on its subcommand.
	container bool
}

// ArityOK reports whether argc arguments (with the name) suit the
// command's arity and, for key-value pairs (MSET), pair up.
func (c *Command) ArityOK(argc int) bool {
	if c.Keys.Step > 1 && c.Keys.Last == -1 && (argc-c.Keys.First)%c.Keys.Step != 0 {
		return false
	}
	if c.Arity >= 0 {
		return argc == c.Arity
	}
	return argc >= -c.Arity
}

// KeyPositions appends the positions in args (a whole command, name
// first) of its keys and returns dst. A numkeys that isn't a count that
// fits the arguments yields no keys from that part (the server answers
// the error).
func (c *Command) KeyPositions(dst []int, args [][]byte) []int {
	k := c.Keys
	if k.First > 0 {
		last := k.Last
		if last < 0 {
			last += len(args)
		}
		for i := k.First; i <= last && i < len(args); i += k.Step {
			dst = append(dst, i)
		}
	}
	if k.NumKeys > 0 && k.NumKeys < len(args) {
		n, err := strconv.Atoi(string(args[k.NumKeys]))
		if err == nil && n > 0 && n <= len(args)-k.NumKeys-1 {
			for i := k.NumKeys + 1; i <= k.NumKeys+n; i++ {
				dst = append(dst, i)
			}
		}
	}
	if k.Streams {
		if at := streamsAt(len(args), func(i int) []byte { return args[i] }); at > 0 {
			for i := at; i < at+(len(args)-at)/2; i++ {
				dst = append(dst, i)
			}
		}
	}
	return dst
}

// streamsAt returns the position of the first key of an XREAD or
// XREADGROUP with argc arguments read by arg, or 0 when there is no
// well-formed STREAMS part. It walks the options by their grammar, so a
// group or consumer named "streams" is not taken for the keyword.
func streamsAt(argc int, arg func(int) []byte) int {
	for i := 1; i < argc; {
		a := arg(i)
		switch {
		case bytes.EqualFold(a, []byte("streams")):
			if n := argc - i - 1; n > 0 && n%2 == 0 {
				return i + 1
			}
			return 0
		case bytes.EqualFold(a, []byte("count")), bytes.EqualFold(a, []byte("block")):
			i += 2
		case bytes.EqualFold(a, []byte("group")):
			i += 3
		default: // NOACK and anything the server will refuse
			i++
		}
	}
	return 0
}

// hasBlock reports whether an XREAD or XREADGROUP with argc arguments has
// the BLOCK option before STREAMS, which makes it a blocking command.
func hasBlock(argc int, arg func(int) []byte) bool {
	for i := 1; i < argc; {
		a := arg(i)
		switch {
		case bytes.EqualFold(a, []byte("streams")):
			return false
		case bytes.EqualFold(a, []byte("block")):
			return true
		case bytes.EqualFold(a, []byte("count")):
			i += 2
		case bytes.EqualFold(a, []byte("group")):
			i += 3
		default:
			i++
		}
	}
	return false
}

// maxNameLen bounds command and subcommand names looked up: the longest
// Redis name is 20 bytes.
const maxNameLen = 32

// slots is an open-addressing hash table of the command table: the
// position + 1 of the command whose name hashes there (0: empty). Lookups
// hash the name while folding its case, so they neither copy it nor hash
// twice (a map lookup on the lower-cased name cost a fifth of a GET's
// decode).
var slots = func() *[slotCount]int16 {
	var t [slotCount]int16
	byName := make(map[string]int, len(commands))
	for i := range commands {
		c := &commands[i]
		if _, dup := byName[c.Name]; dup {
			panic("redis: command " + c.Name + " listed twice")
		}
		byName[c.Name] = i
		c.attr, _, _ = strings.Cut(c.Name, "|")
		j := hashName([]byte(c.Name)) & (slotCount - 1)
		for t[j] != 0 {
			j = (j + 1) & (slotCount - 1)
		}
		t[j] = int16(i + 1)
	}
	for i := range commands {
		if c := &commands[i]; c.attr != c.Name {
			j, ok := byName[c.attr]
			if !ok {
				panic("redis: subcommand " + c.Name + " has no container")
			}
			commands[j].container = true
		}
	}
	return &t
}()

// slotCount is a power of two over twice the table's length.
const slotCount = 1024

// hashName is FNV-1a over name in lower case.
func hashName(name []byte) uint32 {
	h := uint32(2166136261)
	for _, b := range name {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		h = (h ^ uint32(b)) * 16777619
	}
	return h
}

// lookup returns the position of name (any case; "container|sub" for a
// subcommand) in commands, or -1.
func lookup(name []byte) int {
	if len(name) > 2*maxNameLen+1 {
		return -1
	}
	for j := hashName(name) & (slotCount - 1); slots[j] != 0; j = (j + 1) & (slotCount - 1) {
		if i := int(slots[j]) - 1; equalFoldLower(name, commands[i].Name) {
			return i
		}
	}
	return -1
}

// equalFoldLower reports whether b in lower case is low.
func equalFoldLower(b []byte, low string) bool {
	if len(b) != len(low) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != low[i] {
			return false
		}
	}
	return true
}

// lookupSub returns the position of container's subcommand sub, or -1.
func lookupSub(container string, sub []byte) int {
	if len(sub) > maxNameLen {
		return -1
	}
	var b [2*maxNameLen + 1]byte
	n := copy(b[:], container)
	b[n] = '|'
	n++
	n += copy(b[n:], sub)
	return lookup(b[:n])
}

// Lookup returns the command called name, in any case. A subcommand is
// named "container|sub" ("client|setname"); the container alone
// ("client") describes what the proxy does with subcommands it doesn't
// list.
func Lookup(name []byte) (Command, bool) {
	if i := lookup(name); i >= 0 {
		return commands[i], true
	}
	return Command{}, false
}

// Commands returns a copy of the command table, in table order.
func Commands() []Command {
	return append([]Command(nil), commands...)
}
