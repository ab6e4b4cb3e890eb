package redis

import (
	"fmt"
	"strings"
	"testing"
)

func TestCommandTableIsSane(t *testing.T) {
	classes := map[Class]int{}
	for _, c := range commands {
		classes[c.Class]++
		if c.Name != strings.ToLower(c.Name) || c.Name == "" || len(c.Name) > 2*maxNameLen+1 {
			t.Errorf("%q: name must be lower case and short", c.Name)
		}
		if c.Arity == 0 || c.Arity > 8 || c.Arity < -8 {
			t.Errorf("%s: arity %d", c.Name, c.Arity)
		}
		min := c.Arity
		if min < 0 {
			min = -min
		}
		k := c.Keys
		if k.First > 0 {
			if k.Step < 1 || k.Last == 0 || (k.Last > 0 && (k.Last < k.First || k.Last >= min)) {
				t.Errorf("%s: key run %+v does not fit arity %d", c.Name, k, c.Arity)
			}
		} else if k.Last != 0 || k.Step != 0 {
			t.Errorf("%s: key run without a first key: %+v", c.Name, k)
		}
		if k.NumKeys > 0 && (k.NumKeys >= min || c.Arity > 0) {
			t.Errorf("%s: numkeys at %d does not fit arity %d", c.Name, k.NumKeys, c.Arity)
		}
		if (c.Class == ClassSplit) != (c.Merge != MergeNone) {
			t.Errorf("%s: class %v with merge %d", c.Name, c.Class, c.Merge)
		}
		if c.Class == ClassSplit && (k.First != 1 || k.Last != -1) {
			t.Errorf("%s: a split command's keys must run to the end: %+v", c.Name, k)
		}
		if got, ok := Lookup([]byte(strings.ToUpper(c.Name))); !ok || got.Name != c.Name {
			t.Errorf("Lookup(%s) = %v, %v", strings.ToUpper(c.Name), got.Name, ok)
		}
		if c.attr != c.Name && !commands[lookup([]byte(c.attr))].container {
			t.Errorf("%s: its container is not marked", c.Name)
		}
	}
	for class := ClassPlain; class <= ClassUnsupported; class++ {
		if classes[class] == 0 {
			t.Errorf("no command of class %v", class)
		}
	}
	for _, name := range []string{"mget", "mset", "del", "exists", "unlink", "touch"} {
		if c, _ := Lookup([]byte(name)); c.Class != ClassSplit {
			t.Errorf("%s is not split", name)
		}
	}
	for _, name := range []string{"blpop", "brpop", "blmove", "bzpopmin", "bzpopmax", "wait", "brpoplpush", "blmpop", "bzmpop"} {
		if c, _ := Lookup([]byte(name)); c.Class != ClassBlocking {
			t.Errorf("%s is not blocking", name)
		}
	}
	for _, name := range []string{"multi", "exec", "discard", "watch", "unwatch"} {
		if c, _ := Lookup([]byte(name)); c.Class != ClassTransaction {
			t.Errorf("%s is not a transaction command", name)
		}
	}
	if _, ok := Lookup([]byte("nosuchcommand")); ok {
		t.Error("Lookup found an unknown command")
	}
	if _, ok := Lookup([]byte(strings.Repeat("a", 200))); ok {
		t.Error("Lookup found a long unknown name")
	}
	if Class(0).String() != "unknown" || ClassSplit.String() != "split" {
		t.Error("class names")
	}
	if cs := Commands(); len(cs) != len(commands) || &cs[0] == &commands[0] {
		t.Error("Commands must return a copy of the table")
	}
}

func TestKeyPositions(t *testing.T) {
	args := func(s string) [][]byte {
		var out [][]byte
		for _, f := range strings.Fields(s) {
			out = append(out, []byte(f))
		}
		return out
	}
	for _, tc := range []struct {
		cmd  string
		want string
	}{
		{"GET k", "[1]"},
		{"MGET a b c", "[1 2 3]"},
		{"MSET a 1 b 2", "[1 3]"},
		{"BLPOP a b 0", "[1 2]"},
		{"BITOP AND d a b", "[2 3 4]"},
		{"EVAL s 2 a b x y", "[3 4]"},
		{"EVAL s 0", "[]"},
		{"EVAL s 5 a", "[]"},
		{"EVAL s -1 a", "[]"},
		{"ZUNIONSTORE d 2 a b WEIGHTS 1 2", "[1 3 4]"},
		{"BLMPOP 0 2 a b LEFT", "[3 4]"},
		{"XREAD COUNT 1 STREAMS a b 0 0", "[4 5]"},
		{"XREADGROUP GROUP g c STREAMS a >", "[5]"},
		{"XREAD STREAMS a", "[]"},
		{"OBJECT ENCODING k", "[2]"},
		{"PING", "[]"},
	} {
		a := args(tc.cmd)
		i := lookup(a[0])
		if i >= 0 && commands[i].container {
			i = lookupSub(commands[i].attr, a[1])
		}
		if got := fmt.Sprint(commands[i].KeyPositions(nil, a)); got != tc.want {
			t.Errorf("%s: keys %s, want %s", tc.cmd, got, tc.want)
		}
	}
}

func TestArityOK(t *testing.T) {
	get, _ := Lookup([]byte("get"))
	mset, _ := Lookup([]byte("mset"))
	set, _ := Lookup([]byte("set"))
	for _, tc := range []struct {
		cmd  Command
		argc int
		ok   bool
	}{
		{get, 2, true}, {get, 1, false}, {get, 3, false},
		{set, 3, true}, {set, 7, true}, {set, 2, false},
		{mset, 3, true}, {mset, 5, true}, {mset, 4, false}, {mset, 1, false},
	} {
		if got := tc.cmd.ArityOK(tc.argc); got != tc.ok {
			t.Errorf("%s with %d args: %v, want %v", tc.cmd.Name, tc.argc, got, tc.ok)
		}
	}
}
