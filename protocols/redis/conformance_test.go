package redis_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
	"github.com/metamesh/metamesh/protocols/redis"
)

// TestConformance runs the codec conformance kit on the request seeds and
// the replies captured from redis-server 7.0.
func TestConformance(t *testing.T) {
	var reqs []codectest.Frame
	for _, f := range codectest.ReadFrames(t, filepath.Join("testdata", "seed", "request-*.bin")) {
		// A sample is one canonical frame; blank lines before a command
		// (skipped, as redis-server does) are request_test.go's.
		if strings.Contains(f.Name, "blank") {
			continue
		}
		f.Kind = protocols.KindRequest
		reqs = append(reqs, f)
	}
	resps := codectest.ReadFrames(t, filepath.Join("testdata", "captured", "reply-*.bin"))
	codectest.Run(t, codectest.Suite{
		New: func() protocols.Codec {
			c, err := redis.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Factory:   redis.New,
		Options:   []byte(`{"maxFrameBytes": 1048576, "maxArgs": 1024, "password": "p", "username": "u", "resp3": true, "upstreamUsername": "uu", "upstreamPassword": "up"}`),
		Requests:  reqs,
		Responses: resps,
		// A bulk string one byte over the default 512 MiB limit.
		Oversize: []byte("*1\r\n$536870913\r\n"),
	})
}
