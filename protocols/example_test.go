package protocols_test

import (
	"bytes"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// lineCodec is a toy protocol: a frame is one line "ID METHOD\n", and a
// reply is "ID !error text\n". Real codecs live in their own package and
// register from init.
type lineCodec struct{}

func (lineCodec) Model() protocols.Model { return protocols.Multiplexed }

// Decode waits for a whole line, copies what it keeps (header strings must
// not alias buf) and points Raw at the frame.
func (lineCodec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	end := bytes.IndexByte(buf, '\n')
	if end < 0 {
		if len(buf) > 64 {
			return 0, fmt.Errorf("line: frame longer than 64 bytes")
		}
		return 0, nil // not a whole frame yet
	}
	var id uint64
	var method string
	if _, err := fmt.Sscanf(string(buf[:end]), "%d %s", &id, &method); err != nil {
		return 0, fmt.Errorf("line: %v", err)
	}
	msg.Kind, msg.ID, msg.Raw = protocols.KindRequest, id, buf[:end+1]
	if method[0] == '!' {
		msg.Kind = protocols.KindError
	}
	msg.Headers.Add("method", method)
	return end + 1, nil
}

// Encode writes the frame with a new ID; this protocol has no place for
// other headers, so it ignores set.
func (lineCodec) Encode(dst []byte, msg *protocols.Message, id uint64, _ []protocols.Header) ([]byte, error) {
	method, _ := msg.Headers.Get("method")
	return fmt.Appendf(dst, "%d %s\n", id, method), nil
}

func (lineCodec) ErrorReply(dst []byte, req *protocols.Message, reason protocols.Reason, _ string) []byte {
	return fmt.Appendf(dst, "%d !%s\n", req.ID, reason)
}

func (lineCodec) HeartbeatReply(dst []byte, _ *protocols.Message) []byte { return dst }

// A codec registers a factory under its protocol name; the proxy builds it
// by that name (an ApplicationProtocol's spec.codec) and decodes frames as
// they arrive.
func Example() {
	protocols.MustRegister("example-line", func([]byte) (protocols.Codec, error) { return lineCodec{}, nil })

	c, err := protocols.New("example-line", nil)
	if err != nil {
		panic(err)
	}
	var msg protocols.Message
	buf := []byte("42 sayHello\n7 ping")
	n, err := c.Decode(buf, &msg)
	method, _ := msg.Headers.Get("method")
	fmt.Println(n, err, msg.Kind, msg.ID, method)

	n, err = c.Decode(buf[n:], &msg) // "7 ping": no newline yet
	fmt.Println(n, err)

	fmt.Printf("%q\n", c.ErrorReply(nil, &protocols.Message{ID: 42}, protocols.ReasonNoRoute, ""))
	// Output:
	// 12 <nil> request 42 sayHello
	// 0 <nil>
	// "42 !no_route\n"
}
