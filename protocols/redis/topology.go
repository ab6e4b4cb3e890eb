package redis

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
)

// Redis Cluster's replies that tell where slots live: the MOVED and ASK
// redirections, and the slot maps of CLUSTER SHARDS (Redis 7) and
// CLUSTER SLOTS (older servers). docs/redis-cluster.md says how the proxy
// uses them.

// Redirect is a MOVED or ASK error: slot Slot is served by Addr (MOVED:
// for good; ASK: for this one command, sent after ASKING).
type Redirect struct {
	Ask  bool
	Slot int
	Addr string
}

// ParseRedirect reads a MOVED or ASK error reply ("-MOVED 3999
// 127.0.0.1:6381"). An address with no host (":6381", a node that doesn't
// know its own address) is given the host of from, the node that replied.
func ParseRedirect(reply []byte, from string) (Redirect, bool) {
	var r Redirect
	switch {
	case bytes.HasPrefix(reply, []byte("-MOVED ")):
		reply = reply[len("-MOVED "):]
	case bytes.HasPrefix(reply, []byte("-ASK ")):
		reply, r.Ask = reply[len("-ASK "):], true
	default:
		return r, false
	}
	reply = bytes.TrimSuffix(reply, []byte("\r\n"))
	sp := bytes.IndexByte(reply, ' ')
	if sp < 0 {
		return r, false
	}
	slot, err := strconv.Atoi(string(reply[:sp]))
	if err != nil || slot < 0 || slot >= SlotCount {
		return r, false
	}
	host, port, err := net.SplitHostPort(string(reply[sp+1:]))
	if err != nil || port == "" || bytes.ContainsAny(reply[sp+1:], " \r\n") {
		return r, false
	}
	if host == "" {
		if host, _, err = net.SplitHostPort(from); err != nil {
			return r, false
		}
	}
	r.Slot, r.Addr = slot, net.JoinHostPort(host, port)
	return r, true
}

// Shard is a primary, its replicas and the slot ranges they serve.
type Shard struct {
	// Slots are inclusive ranges [first, last].
	Slots    [][2]int
	Primary  string
	Replicas []string
}

// topoValue is one decoded reply: a number (':'), a string (bulk, simple,
// verbatim; Str) or an aggregate (array, set, map flattened to key,
// value…; Elems).
type topoValue struct {
	typ   byte
	num   int64
	str   []byte
	elems []topoValue
}

// maxTopologyElems bounds the values a slot map reply may hold.
const maxTopologyElems = 1 << 20

// parseTopology decodes one whole reply for the topology parsers.
func parseTopology(buf []byte) (topoValue, error) {
	budget := maxTopologyElems
	v, n, err := parseAt(buf, 0, 0, &budget)
	if err != nil {
		return v, err
	}
	if n != len(buf) {
		return v, fmt.Errorf("redis: %d bytes after the reply", len(buf)-n)
	}
	return v, nil
}

func parseAt(buf []byte, pos, depth int, budget *int) (topoValue, int, error) {
	if pos >= len(buf) {
		return topoValue{}, 0, fmt.Errorf("redis: reply ends early")
	}
	if *budget--; *budget < 0 {
		return topoValue{}, 0, fmt.Errorf("redis: reply holds more than %d values", maxTopologyElems)
	}
	t := buf[pos]
	switch t {
	case ':':
		n, next, err := parseInt(buf, pos+1)
		return topoValue{typ: t, num: n}, next, err
	case '+', '-':
		end := bytes.Index(buf[pos:], []byte("\r\n"))
		if end < 0 {
			return topoValue{}, 0, fmt.Errorf("redis: line without CRLF")
		}
		return topoValue{typ: t, str: buf[pos+1 : pos+end]}, pos + end + 2, nil
	case '$', '=':
		n, next, err := parseInt(buf, pos+1)
		if err != nil || n < 0 || n > int64(len(buf)-next) {
			return topoValue{typ: '_'}, next, err
		}
		end, err := crlf(buf, next+int(n))
		return topoValue{typ: '$', str: buf[next : next+int(n)]}, end, err
	case '_':
		end, err := crlf(buf, pos+1)
		return topoValue{typ: t}, end, err
	case '*', '~', '%':
		n, next, err := parseInt(buf, pos+1)
		if err != nil {
			return topoValue{}, 0, err
		}
		if t == '%' {
			n *= 2
		}
		if n < 0 {
			return topoValue{typ: '_'}, next, nil
		}
		if n > int64(*budget) || depth >= 8 {
			return topoValue{}, 0, fmt.Errorf("redis: aggregate of %d too large or deep", n)
		}
		v := topoValue{typ: '*', elems: make([]topoValue, n)}
		for i := range v.elems {
			if v.elems[i], next, err = parseAt(buf, next, depth+1, budget); err != nil {
				return topoValue{}, 0, err
			}
		}
		return v, next, nil
	}
	return topoValue{}, 0, fmt.Errorf("redis: reply type %q not expected in a slot map", t)
}

// field returns the value after key in a map (flattened to key, value…).
func (v topoValue) field(key string) (topoValue, bool) {
	for i := 0; i+1 < len(v.elems); i += 2 {
		if string(v.elems[i].str) == key {
			return v.elems[i+1], true
		}
	}
	return topoValue{}, false
}

// ParseShards reads the reply to CLUSTER SHARDS (RESP2 or RESP3): each
// shard's slot ranges and its nodes. Nodes whose health is not "online"
// are left out; a shard without slots (a primary being set up) or
// without an online primary is skipped.
func ParseShards(reply []byte) ([]Shard, error) {
	v, err := parseTopology(reply)
	if err != nil {
		return nil, err
	}
	if v.typ == '-' {
		return nil, fmt.Errorf("redis: CLUSTER SHARDS: %s", v.str)
	}
	if v.typ != '*' {
		return nil, fmt.Errorf("redis: CLUSTER SHARDS: want an array, got %q", v.typ)
	}
	var out []Shard
	for i, sv := range v.elems {
		slots, ok := sv.field("slots")
		nodes, ok2 := sv.field("nodes")
		if !ok || !ok2 || len(slots.elems)%2 != 0 {
			return nil, fmt.Errorf("redis: CLUSTER SHARDS: shard %d: no slots or nodes", i)
		}
		var s Shard
		for j := 0; j < len(slots.elems); j += 2 {
			r := [2]int{int(slots.elems[j].num), int(slots.elems[j+1].num)}
			if slots.elems[j].typ != ':' || slots.elems[j+1].typ != ':' || r[0] < 0 || r[0] > r[1] || r[1] >= SlotCount {
				return nil, fmt.Errorf("redis: CLUSTER SHARDS: shard %d: bad slot range", i)
			}
			s.Slots = append(s.Slots, r)
		}
		for _, nv := range nodes.elems {
			addr, ok := nodeAddr(nv)
			health, _ := nv.field("health")
			role, _ := nv.field("role")
			if !ok || string(health.str) != "online" {
				continue
			}
			switch string(role.str) {
			case "master":
				s.Primary = addr
			case "replica":
				s.Replicas = append(s.Replicas, addr)
			}
		}
		if len(s.Slots) > 0 && s.Primary != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// nodeAddr is a CLUSTER SHARDS node's ip (else endpoint) and port.
func nodeAddr(nv topoValue) (string, bool) {
	host, ok := nv.field("ip")
	if !ok || len(host.str) == 0 {
		host, ok = nv.field("endpoint")
	}
	port, ok2 := nv.field("port")
	if !ok || !ok2 || len(host.str) == 0 || host.str[0] == '?' || port.typ != ':' || port.num <= 0 || port.num > 65535 {
		return "", false
	}
	return net.JoinHostPort(string(host.str), strconv.FormatInt(port.num, 10)), true
}

// ParseSlots reads the reply to CLUSTER SLOTS: per slot range, its
// primary then its replicas, each [host, port, id, …]. Ranges served by
// the same primary make one shard.
func ParseSlots(reply []byte) ([]Shard, error) {
	v, err := parseTopology(reply)
	if err != nil {
		return nil, err
	}
	if v.typ == '-' {
		return nil, fmt.Errorf("redis: CLUSTER SLOTS: %s", v.str)
	}
	if v.typ != '*' {
		return nil, fmt.Errorf("redis: CLUSTER SLOTS: want an array, got %q", v.typ)
	}
	var out []Shard
	byPrimary := map[string]int{}
	for i, rv := range v.elems {
		e := rv.elems
		if len(e) < 3 || e[0].typ != ':' || e[1].typ != ':' || e[0].num < 0 || e[0].num > e[1].num || e[1].num >= SlotCount {
			return nil, fmt.Errorf("redis: CLUSTER SLOTS: range %d: bad slots or no primary", i)
		}
		var addrs []string
		for _, nv := range e[2:] {
			if len(nv.elems) < 2 || len(nv.elems[0].str) == 0 || nv.elems[0].str[0] == '?' || nv.elems[1].typ != ':' || nv.elems[1].num <= 0 || nv.elems[1].num > 65535 {
				continue
			}
			addrs = append(addrs, net.JoinHostPort(string(nv.elems[0].str), strconv.FormatInt(nv.elems[1].num, 10)))
		}
		if len(addrs) == 0 {
			continue
		}
		r := [2]int{int(e[0].num), int(e[1].num)}
		j, ok := byPrimary[addrs[0]]
		if !ok {
			j = len(out)
			byPrimary[addrs[0]] = j
			out = append(out, Shard{Primary: addrs[0], Replicas: addrs[1:]})
		}
		out[j].Slots = append(out[j].Slots, r)
	}
	return out, nil
}

// Requests of the proxy's own to cluster nodes.
var (
	// ClusterShards and ClusterSlots ask a node for the slot map.
	ClusterShards = AppendCommand(nil, []byte("CLUSTER"), []byte("SHARDS"))
	ClusterSlots  = AppendCommand(nil, []byte("CLUSTER"), []byte("SLOTS"))
	// Asking precedes a command sent where an ASK redirected it.
	Asking = AppendCommand(nil, []byte("ASKING"))
)
