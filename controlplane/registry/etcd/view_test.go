package etcd

import (
	"net/url"
	"os"
	"slices"
	"testing"

	"go.uber.org/zap"
)

const greetings = "org.apache.dubbo.samples.api.GreetingsService"

// TestViewApply applies the keys a dubbo-go v3.3.0 provider wrote to etcd
// (application-level: the mapping and its instance, the value captured in
// ../testdata) and interface-level provider keys.
func TestViewApply(t *testing.T) {
	inst, err := os.ReadFile("../testdata/dubbo-go-3.3.0-etcd-instance.json")
	if err != nil {
		t.Fatal(err)
	}
	v := newView("/dubbo/", zap.NewNop())
	instKey := ServicesPrefix + "metamesh-greeter-v1/127.0.0.1:20991"
	if got := v.apply(instKey, inst, false); len(got) != 0 {
		t.Errorf("an instance no mapping names touched %v", got)
	}
	if got := v.apply("/dubbo/mapping/"+greetings, []byte("metamesh-greeter-v1"), false); !slices.Equal(got, []string{greetings}) {
		t.Errorf("the mapping touched %v", got)
	}
	ps := v.index.Providers(greetings)
	if len(ps) != 1 || ps[0].Addr() != "127.0.0.1:20991" || ps[0].Params["version"] != "1.0.0" {
		t.Fatalf("application-level providers %+v", ps)
	}

	// Interface-level providers win; when they go, the application-level
	// ones are back.
	node := url.QueryEscape("dubbo://10.0.0.1:20880/" + greetings + "?interface=" + greetings + "&version=9")
	provKey := "/dubbo/" + greetings + "/providers/" + node
	if got := v.apply(provKey, nil, false); !slices.Equal(got, []string{greetings}) {
		t.Errorf("a provider key touched %v", got)
	}
	if ps := v.index.Providers(greetings); len(ps) != 1 || ps[0].Addr() != "10.0.0.1:20880" {
		t.Errorf("with an interface-level provider: %+v", ps)
	}
	v.apply(provKey, nil, true)
	if ps := v.index.Providers(greetings); len(ps) != 1 || ps[0].Addr() != "127.0.0.1:20991" {
		t.Errorf("interface-level provider gone: %+v", ps)
	}

	// The instance's lease expires.
	if got := v.apply(instKey, nil, true); !slices.Equal(got, []string{greetings}) {
		t.Errorf("the instance's deletion touched %v", got)
	}
	if ps := v.index.Providers(greetings); len(ps) != 0 {
		t.Errorf("providers after the instance left: %+v", ps)
	}

	for _, key := range []string{
		"/dubbometamesh-greeter-v1/14231299848", // dubbo-go's own copy of the metadata
		"/dubbo/config/dubbo/x",
		"/dubbo/mapping/a/b",
		"/services/app",
		"/services/app/id/more",
		"/dubbo/" + greetings + "/providers/" + url.QueryEscape("tri://10.0.0.1:1/"+greetings),
		"/other/" + greetings + "/providers/" + node,
	} {
		if got := v.apply(key, []byte("x"), false); len(got) != 0 {
			t.Errorf("key %s touched %v", key, got)
		}
	}
	if all := v.index.All(); len(all) != 0 {
		t.Errorf("providers left: %v", all)
	}
}
