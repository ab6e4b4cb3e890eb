package redis

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// classTreatment is what README.md says the proxy does with each class.
var classTreatment = map[Class]string{
	ClassPlain:       "Forwarded on a shared upstream pipeline, routed by the `key` attribute (the first key) and the others; keyless ones (`publish`, `time`, `eval … 0`) by the other attributes alone. A command with several keys runs on the upstream of its first key: its keys must live together (give them a common prefix).",
	ClassSplit:       "With more than one key, split into one command per key (MSET's values travel with their keys), each routed on its own like any command, and the replies merged (shown after each name): `sum` adds the integers, `key order` rebuilds the array in the order of the keys, `all OK` answers `+OK` once every part did. The first error reply among the parts is the reply. As in Envoy's redis proxy, a part goes to its key's upstream even when several keys share one. MSETNX is not split: it is atomic.",
	ClassTransaction: "The client gets an upstream connection of its own (not the shared pipeline) from WATCH, or from the first command after MULTI, until EXEC, DISCARD or UNWATCH (outside MULTI) ends the transaction: WATCH, or that first command, picks the upstream by its key, and every command until the end goes there whatever its key (keys in a transaction must live together). The proxy acknowledges MULTI itself and sends it ahead of the first command; EXEC or DISCARD with nothing queued is answered by the proxy; PING and ECHO inside MULTI go to the server, which answers them in EXEC's reply. A command refused inside MULTI, by the proxy (unsupported, wrong arity, no route, denied…) or because the transaction's upstream connection closed, fails the transaction as redis-server does for a command it refuses while queuing: later commands are acknowledged with `+QUEUED` and not sent, and EXEC gets `-EXECABORT Transaction discarded because of previous errors.`, the upstream connection being let go (reset) without the EXEC; a WATCH whose connection closed fails the next transaction the same way. Once EXEC, DISCARD or UNWATCH is answered, or the client leaves, the connection is reset and kept for the next client (see Upstream connections of a client's own).",
	ClassBlocking:    "May hold their connection for the whole timeout, so never on a shared pipeline: each goes on an upstream connection of its own, let go once it is answered (inside a transaction, on the transaction's; see Upstream connections of a client's own). Route timeouts and retries don't apply to it. XREAD and XREADGROUP are in this class only with BLOCK (`CommandOf` says so per request).",
	ClassPubSub:      "SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE give the client an upstream connection of its own (SSUBSCRIBE on its shard channel's slot's node in a Redis Cluster), every frame of which is relayed as it comes: a RESP2 client is in subscriber mode as with redis-server (only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT and RESET, all on that connection; other commands get redis-server's `-ERR Can't execute …`), a RESP3 client's commands all go on it and its messages come as push frames. An unsubscribe with no subscription is answered by the proxy (count 0). Once the upstream confirms no subscription is left, or the client sends RESET, the connection is let go (reset before another client uses it). Transactions are refused on a subscribed connection and pub/sub inside a transaction. MONITOR is refused: `-ERR metamesh: pub/sub command 'monitor' is not supported by the proxy: connect to Redis directly`. PUBLISH and SPUBLISH are plain.",
	ClassLocal:       "Answered by the proxy (`Codec.Local`), see Local replies.",
	ClassUnsupported: "Refused: `-ERR metamesh: command '…' is not supported by the proxy` (server administration, whole-keyspace commands such as KEYS, SCAN, DBSIZE and FLUSHALL that would have to reach every upstream, script and function management, cluster commands). For a container (CLIENT, OBJECT, XINFO…) this is what happens to every subcommand not listed in another class.",
}

var mergeNames = map[Merge]string{MergeSum: "sum", MergeKeyOrder: "key order", MergeAllOK: "all OK"}

// commandTable renders the command table section of README.md.
func commandTable() string {
	var b strings.Builder
	b.WriteString("<!-- commands:begin (generated from table.go by go test -run TestReadme -update) -->\n")
	for class := ClassPlain; class <= ClassUnsupported; class++ {
		sorted := slices.SortedFunc(slices.Values(commands), func(a, b Command) int { return strings.Compare(a.Name, b.Name) })
		var names []string
		for _, c := range sorted {
			if c.Class != class {
				continue
			}
			name := "`" + strings.ReplaceAll(c.Name, "|", " ") + "`"
			if c.Merge != MergeNone {
				name += " (" + mergeNames[c.Merge] + ")"
			}
			names = append(names, name)
		}
		fmt.Fprintf(&b, "\n### %s (%d)\n\n%s\n\n%s\n", class, len(names), classTreatment[class], strings.Join(names, ", "))
	}
	b.WriteString("\n<!-- commands:end -->")
	return b.String()
}

// TestReadme checks that README.md's command table is the one the table
// makes; -update rewrites it.
func TestReadme(t *testing.T) {
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "<!-- commands:begin")
	end := strings.Index(doc, "<!-- commands:end -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no commands:begin/end markers")
	}
	end += len("<!-- commands:end -->")
	want := commandTable()
	if doc[start:end] == want {
		return
	}
	if !*update {
		t.Fatal("README.md's command table is stale: run go test ./protocols/redis -run TestReadme -update")
	}
	if err := os.WriteFile("README.md", []byte(doc[:start]+want+doc[end:]), 0o644); err != nil {
		t.Fatal(err)
	}
}
