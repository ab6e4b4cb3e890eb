package dubbo

import (
	"bytes"
	"math/rand"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// hessianForms are argument values in every form the walk must skip.
var hessianForms = []struct {
	name string
	raw  []byte
}{
	{"null", []byte{'N'}},
	{"true", []byte{'T'}},
	{"false", []byte{'F'}},
	{"int compact", []byte{0x90}},
	{"int compact min", []byte{0x80}},
	{"int compact max", []byte{0xbf}},
	{"int 2 bytes", []byte{0xc8, 0x00}},
	{"int 2 bytes min", []byte{0xc0, 0x00}},
	{"int 2 bytes max", []byte{0xcf, 0xff}},
	{"int 3 bytes", []byte{0xd4, 0x00, 0x00}},
	{"int 3 bytes min", []byte{0xd0, 0x00, 0x00}},
	{"int 3 bytes max", []byte{0xd7, 0xff, 0xff}},
	{"int", []byte{'I', 0x80, 0, 0, 0}},
	{"long compact", []byte{0xe0}},
	{"long compact min", []byte{0xd8}},
	{"long compact max", []byte{0xef}},
	{"long 2 bytes", []byte{0xf8, 0x00}},
	{"long 2 bytes min", []byte{0xf0, 0x00}},
	{"long 2 bytes max", []byte{0xff, 0xff}},
	{"long 3 bytes", []byte{0x3c, 0x00, 0x00}},
	{"long 3 bytes min", []byte{0x38, 0x00, 0x00}},
	{"long 3 bytes max", []byte{0x3f, 0xff, 0xff}},
	{"long as int", []byte{'Y', 0, 0, 1, 0}},
	{"long", []byte{'L', 1, 2, 3, 4, 5, 6, 7, 8}},
	{"double 0", []byte{0x5b}},
	{"double 1", []byte{0x5c}},
	{"double byte", []byte{0x5d, 0x80}},
	{"double short", []byte{0x5e, 0x80, 0x00}},
	{"double float", []byte{0x5f, 0, 0, 0x30, 0x39}},
	{"double", []byte{'D', 0x40, 0x28, 0x80, 0, 0, 0, 0, 0}},
	{"date", []byte{0x4a, 0, 0, 0, 0xd0, 0x4b, 0x92, 0x84, 0xb8}},
	{"date minutes", []byte{0x4b, 0x00, 0xe3, 0x83, 0x8f}},
	{"string empty", []byte{0x00}},
	{"string compact", hs("hello")},
	{"string short", hs(strings.Repeat("s", 32))},
	{"string short max", hs(strings.Repeat("s", 1023))},
	{"string S", hs(strings.Repeat("s", 1024))},
	{"string long", hs(strings.Repeat("s", 70000))},
	{"string chunked", cat([]byte{'R', 0, 2}, []byte("ab"), []byte{'R', 0, 1}, []byte("c"), []byte{0x01, 'd'})},
	{"string chunked short final", cat([]byte{'R', 0, 1}, []byte("a"), []byte{0x30, 0x01}, []byte("b"))},
	{"string multibyte", hs("é€🚀")},
	{"string java surrogates", []byte{0x02, 0xed, 0xa0, 0xbd, 0xed, 0xba, 0x80}},
	{"binary empty", []byte{0x20}},
	{"binary compact", []byte{0x23, 1, 2, 3}},
	{"binary short", cat([]byte{0x34, 0x10}, make([]byte, 16))},
	{"binary short max", cat([]byte{0x37, 0xff}, make([]byte, 1023))},
	{"binary B", cat([]byte{'B', 0x04, 0x00}, make([]byte, 1024))},
	{"binary chunked", cat([]byte{'A', 0, 2, 'Z', 'Z', 'A', 0, 1, 'Z', 'B', 0, 1, 'Z'})},
	{"binary chunked compact final", cat([]byte{'A', 0, 1, 'Z', 0x22, 'Z', 'Z'})},
	{"list typed fixed", cat([]byte{'V'}, hs("[int"), []byte{0x92, 0x91, 0x92})},
	{"list typed fixed type ref", cat([]byte{'V', 0x90, 0x91, 0x91})},
	{"list typed variable", cat([]byte{'U'}, hs("java.util.ArrayList"), []byte{0x91, 'N', 'Z'})},
	{"list untyped variable", []byte{'W', 0x91, 'T', 'Z'}},
	{"list untyped fixed", []byte{'X', 0x93, 0x91, 0x92, 0x93}},
	{"list compact typed empty", cat([]byte{0x70}, hs("[string"))},
	{"list compact typed", cat([]byte{0x73}, hs("[string"), hs("a"), hs("b"), hs("c"))},
	{"list compact untyped empty", []byte{0x78}},
	{"list compact untyped max", []byte{0x7f, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97}},
	{"map untyped", hmap(hs("k"), []byte{0x91}, []byte{0x92}, hmap())},
	{"map empty", []byte{'H', 'Z'}},
	{"map typed", cat([]byte{'M'}, hs("java.util.TreeMap"), hs("k"), hs("v"), []byte{'Z'})},
	{"map typed ref", cat([]byte{'M', 0x90}, hs("k"), hs("v"), []byte{'Z'})},
	{"object compact", cat([]byte{'C'}, hs("com.X"), []byte{0x92}, hs("a"), hs("b"), []byte{0x60, 0x91}, hs("v"))},
	{"object O", cat([]byte{'C'}, hs("com.X"), []byte{0x91}, hs("a"), []byte{'O', 0x90, 'N'})},
	{"object no fields", cat([]byte{'C'}, hs("com.E"), []byte{0x90}, []byte{0x60})},
	{"object two classes", cat([]byte{0x7a, 'C'}, hs("com.X"), []byte{0x91}, hs("a"), []byte{0x60, 0x91},
		[]byte{'C'}, hs("com.Y"), []byte{0x92}, hs("p"), hs("q"), []byte{0x61, 0x60, 0x92, 0x93})},
	{"object nested with ref", cat([]byte{'C'}, hs("com.Node"), []byte{0x92}, hs("v"), hs("next"),
		[]byte{0x60, 0x91, 0x60, 0x92, 'Q', 0x90})},
	{"objects in a list", cat([]byte{0x7a, 'C'}, hs("com.X"), []byte{0x91}, hs("a"), []byte{0x60, 0x91, 0x60, 0x92})},
	{"ten classes", tenClasses()},
	{"ref", []byte{'Q', 0x90}},
	{"ref int", []byte{'Q', 'I', 0, 0, 1, 0}},
	{"nested 60", cat(bytes.Repeat([]byte{0x79}, 60), []byte{'N'})},
	{"nested maps", cat(bytes.Repeat([]byte{'H', 0x90}, 30), []byte{'N'}, bytes.Repeat([]byte{'Z'}, 30))},
}

// tenClasses defines ten classes (past the reader's inline table) and
// uses the last one.
func tenClasses() []byte {
	var b []byte
	for i := 0; i < 10; i++ {
		b = append(b, 'C')
		b = append(b, hs("com.C"+string(rune('0'+i)))...)
		b = append(b, byte(0x90+i%3))
		for j := 0; j < i%3; j++ {
			b = append(b, hs("f")...)
		}
	}
	return append(b, 0x7a, 'O', 0x99, 0x67, 0x91) // instances of classes 9 and 7
}

func TestSkipForms(t *testing.T) {
	c := newCodec(t, "")
	for _, tt := range hessianForms {
		t.Run(tt.name, func(t *testing.T) {
			// The form, then a string argument, then attachments: the
			// attachments are read only if the walk ended right.
			body := reqBody("", "m", "Ljava/lang/Object;Ljava/lang/String;", hmap(hs("a"), hs("1")), tt.raw, hs("after"))
			msg := mustDecode(t, c, frame(reqFlags, 0, 1, body))
			if v, _ := msg.Headers.Get("a"); v != "1" {
				t.Errorf("attachments not reached: %q", msg.Headers.All())
			}
			// As an attachment value, the form is skipped and kept.
			body = reqBody("", "m", "", hmap(hs("x"), tt.raw, hs("a"), hs("1")))
			msg = mustDecode(t, c, frame(reqFlags, 0, 1, body))
			if v, _ := msg.Headers.Get("a"); v != "1" {
				t.Errorf("attachment after the form not read: %q", msg.Headers.All())
			}
			// Every strict prefix of the form inside a complete frame is
			// an error, never a panic.
			for i := 0; i < len(tt.raw) && len(tt.raw) < 2000; i++ {
				body := reqBody("", "m", "Ljava/lang/Object;", nil, tt.raw[:i])
				if _, err := c.Decode(frame(reqFlags, 0, 1, body), msg); err == nil && i > 0 && !validPrefix(tt.raw[:i]) {
					t.Errorf("prefix %d of %d decoded", i, len(tt.raw))
				}
			}
		})
	}
}

// validPrefix reports whether a prefix of a form is itself one whole
// value followed by a valid attachments tail (possible: a list prefix can
// end in a map).
func validPrefix(b []byte) bool {
	r := reader{b: b}
	return r.skip() == nil
}

func TestCountArgs(t *testing.T) {
	// The regular expression Dubbo (Java ReflectUtils, dubbo-go) counts with.
	ident := `(?:[_$a-zA-Z][_$a-zA-Z0-9]*)`
	class := `(?:L` + ident + `(?:\/` + ident + `)*;)`
	desc := regexp.MustCompile(`(?:(?:[VZBCDFIJS])|` + class + `|(?:\[+(?:(?:[VZBCDFIJS])|` + class + `)))`)
	cases := []string{
		"", "I", "J", "Z", "IJZ", "Ljava/lang/String;", "Ljava/lang/String;Ljava/lang/String;",
		"[Ljava/lang/String;", "[[I", "[", "[[", "L", "L;", "Ljava/;", "Ljava//x;", "Lx/$In_1;",
		"[Ljava.util.Date", "Ljava/util/Map;[B", "java.lang.String", "Lcom/a/B;IJ[Z[[Lcom/c/D;V",
		"L1x;", "Lx", "Lx/", "Lx/1;", "[L", "[Lx", "IL", "Q", "é",
	}
	rng := rand.New(rand.NewSource(1))
	alphabet := "LIJZV[;/_$aZ9.é"
	for i := 0; i < 5000; i++ {
		b := make([]byte, rng.Intn(20))
		for j := range b {
			b[j] = alphabet[rng.Intn(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := countArgs([]byte(s)), len(desc.FindAllString(s, -1)); got != want {
			t.Errorf("countArgs(%q) = %d; the regexp finds %d", s, got, want)
		}
	}
}

func TestPutString(t *testing.T) {
	at := func(n int, s string) string { return strings.Repeat("a", n) + s }
	tests := []struct {
		name, in, want string
		head           []byte
	}{
		{"empty", "", "", []byte{0x00}},
		{"compact max", strings.Repeat("a", 31), "", []byte{0x1f}},
		{"short min", strings.Repeat("a", 32), "", []byte{0x30, 0x20}},
		{"short max", strings.Repeat("a", 1023), "", []byte{0x33, 0xff}},
		{"S", strings.Repeat("a", 1024), "", []byte{'S', 0x04, 0x00}},
		{"S max", strings.Repeat("a", 0x8000), "", []byte{'S', 0x80, 0x00}},
		{"chunked", strings.Repeat("a", 0x8001), "", []byte{'R', 0x80, 0x00}},
		{"pair at chunk edge", at(0x7fff, "🚀b"), "", []byte{'R', 0x7f, 0xff}},
		{"pair before chunk edge", at(0x7ffe, "🚀b"), "", []byte{'R', 0x80, 0x00}},
		{"multibyte", "é€🚀", "", []byte{0x04}},
		{"invalid utf-8", "a\xffb", "a\uFFFDb", []byte{0x03}},
		{"long mixed", strings.Repeat("héllo 🌍 ", 20000), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.in
			}
			b := putString(nil, tt.in)
			if tt.head != nil && !bytes.HasPrefix(b, tt.head) {
				t.Errorf("starts % x; want % x", b[:min(len(b), 4)], tt.head)
			}
			r := reader{b: b}
			got, ok, err := r.appendString(nil)
			if err != nil || !ok || r.pos != len(b) {
				t.Fatalf("read back: ok %v err %v at %d of %d", ok, err, r.pos, len(b))
			}
			if string(got) != want {
				t.Errorf("read back %d bytes, want %d", len(got), len(want))
			}
			if !utf8.Valid(got) {
				t.Errorf("read back invalid UTF-8")
			}
			checkChunks(t, b)
		})
	}
}

// checkChunks checks that no chunk exceeds 0x8000 units or ends inside a
// surrogate pair, and that only the last chunk is final.
func checkChunks(t *testing.T, b []byte) {
	r := reader{b: b}
	for {
		tag, _ := r.u8()
		n, final, ok, err := r.chunkLen(tag)
		if !ok || err != nil || n > chunkUnits {
			t.Fatalf("chunk tag 0x%02x n %d ok %v err %v", tag, n, ok, err)
		}
		end, _, err := r.walkChars(n)
		if err != nil {
			t.Fatal(err)
		}
		if end >= 3 && b[end-3] == 0xed && b[end-2]&0xf0 == 0xa0 {
			t.Errorf("chunk ends in a high surrogate")
		}
		r.pos = end
		if final {
			if r.pos != len(b) {
				t.Errorf("final chunk ends at %d of %d", r.pos, len(b))
			}
			return
		}
	}
}
