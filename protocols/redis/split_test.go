package redis

import (
	"strings"
	"testing"
)

func TestAppendCommand(t *testing.T) {
	got := string(AppendCommand(nil, []byte("SET"), []byte("k"), []byte("")))
	if got != "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n" {
		t.Fatalf("AppendCommand = %q", got)
	}
	c := newCodec(t, "")
	if msg := decodeReq(t, c, []byte(got)); attrs(msg) != "command=set key=k readonly=false" {
		t.Fatalf("re-decoded %q", attrs(msg))
	}
}

func TestAppendPart(t *testing.T) {
	mset, _ := Lookup([]byte("mset"))
	mget, _ := Lookup([]byte("mget"))
	args, _ := Args(nil, mb("MSET", "a", "1", "b", "2", "c", "3"))
	keys := mset.KeyPositions(nil, args)
	if got := string(mset.AppendPart(nil, args, []int{keys[0], keys[2]})); got != string(mb("MSET", "a", "1", "c", "3")) {
		t.Errorf("MSET part %q", got)
	}
	args, _ = Args(nil, mb("MGET", "a", "b", "c"))
	if got := string(mget.AppendPart(nil, args, []int{2})); got != string(mb("MGET", "b")) {
		t.Errorf("MGET part %q", got)
	}
	// A position past the arguments is skipped, not a panic.
	if got := string(mset.AppendPart(nil, [][]byte{[]byte("MSET"), []byte("a")}, []int{1})); got != string(mb("MSET")) {
		t.Errorf("short MSET part %q", got)
	}
}

func TestMerge(t *testing.T) {
	del, _ := Lookup([]byte("del"))
	mget, _ := Lookup([]byte("mget"))
	mset, _ := Lookup([]byte("mset"))
	get, _ := Lookup([]byte("get"))
	b := func(s ...string) [][]byte {
		out := make([][]byte, len(s))
		for i := range s {
			out[i] = []byte(s[i])
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		cmd     Command
		replies [][]byte
		owner   []int
		want    string
		err     string
	}{
		{"sum", del, b(":1\r\n", ":0\r\n", ":2\r\n"), nil, ":3\r\n", ""},
		{"sum with attribute", del, b("|1\r\n+a\r\n+b\r\n:1\r\n", ":1\r\n"), nil, ":2\r\n", ""},
		{"sum error wins", del, b(":1\r\n", "-ERR x\r\n", "-ERR y\r\n"), nil, "-ERR x\r\n", ""},
		{"sum blob error", del, b(":1\r\n", "!3\r\nERR\r\n"), nil, "!3\r\nERR\r\n", ""},
		{"sum not integer", del, b(":1\r\n", "+OK\r\n"), nil, "", "want an integer"},
		{"sum trailing bytes", del, b(":1\r\n:2\r\n"), nil, "", "after the reply"},
		{"array in key order", mget, b("*2\r\n$1\r\na\r\n$-1\r\n", "*1\r\n$1\r\nb\r\n"), []int{0, 1, 0},
			"*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n", ""},
		{"array resp3 nulls", mget, b("*1\r\n_\r\n", "*1\r\n$1\r\nb\r\n"), []int{1, 0}, "*2\r\n$1\r\nb\r\n_\r\n", ""},
		{"array error wins", mget, b("*1\r\n$1\r\na\r\n", "-MOVED x\r\n"), []int{0, 1}, "-MOVED x\r\n", ""},
		{"array too few", mget, b("*1\r\n$1\r\na\r\n"), []int{0, 0}, "", "no element left"},
		{"array too many", mget, b("*2\r\n$1\r\na\r\n:1\r\n"), []int{0}, "", "left over"},
		{"array bad owner", mget, b("*1\r\n:1\r\n"), []int{3}, "", "no element left"},
		{"array not array", mget, b(":1\r\n"), []int{0}, "", "want an array"},
		{"ok", mset, b("+OK\r\n", "+OK\r\n"), nil, "+OK\r\n", ""},
		{"ok error wins", mset, b("+OK\r\n", "-OOM x\r\n"), nil, "-OOM x\r\n", ""},
		{"ok not ok", mset, b("+OK\r\n", ":1\r\n"), nil, "", "want +OK"},
		{"not split", get, b("+OK\r\n"), nil, "", "not a split command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.MergeReplies(nil, tc.replies, tc.owner)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("MergeReplies = %q, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("MergeReplies = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
