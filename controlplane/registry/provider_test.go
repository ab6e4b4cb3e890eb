package registry

import (
	"errors"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseProvider(t *testing.T) {
	enc := url.QueryEscape
	tests := []struct {
		name, node string
		want       Provider
		err        string
	}{
		{name: "encoded, interface parameter", node: enc("dubbo://10.0.0.1:20880/com.x.Greeter?interface=com.x.Greeter&version=1.0.0&group=batch"),
			want: Provider{Interface: "com.x.Greeter", Address: "10.0.0.1", Port: 20880, Params: map[string]string{"interface": "com.x.Greeter", "version": "1.0.0", "group": "batch"}}},
		{name: "interface from the path", node: "dubbo://10.0.0.1:20880/com.x.Greeter?side=provider",
			want: Provider{Interface: "com.x.Greeter", Address: "10.0.0.1", Port: 20880, Params: map[string]string{"side": "provider"}}},
		{name: "interface parameter wins over the path", node: enc("dubbo://10.0.0.1:1/bean?interface=com.x.I"),
			want: Provider{Interface: "com.x.I", Address: "10.0.0.1", Port: 1, Params: map[string]string{"interface": "com.x.I"}}},
		{name: "IPv6", node: enc("dubbo://[::1]:20880/com.x.I"), want: Provider{Interface: "com.x.I", Address: "::1", Port: 20880, Params: map[string]string{}}},
		{name: "first of repeated parameters", node: "dubbo://h:2/I?a=1&a=2", want: Provider{Interface: "I", Address: "h", Port: 2, Params: map[string]string{"a": "1"}}},
		{name: "tri", node: enc("tri://10.0.0.1:50051/com.x.I"), err: ErrNotDubbo.Error()},
		{name: "not a URL", node: "provider-1", err: "not a URL"},
		{name: "no port", node: "dubbo://10.0.0.1/com.x.I", err: "not HOST:PORT"},
		{name: "port 0", node: "dubbo://10.0.0.1:0/com.x.I", err: "out of range"},
		{name: "port too big", node: "dubbo://10.0.0.1:70000/com.x.I", err: "out of range"},
		{name: "no interface", node: "dubbo://10.0.0.1:1/?side=provider", err: "no interface"},
		{name: "bad escape", node: "dubbo%ZZ", err: "invalid URL escape"},
		{name: "bad parameter escape", node: "dubbo://h:1/I?a=%25ZZ", err: "parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProvider(tt.node)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestParseProviderDubboGo parses the node a dubbo-go v3.3.0 provider
// wrote to ZooKeeper.
func TestParseProviderDubboGo(t *testing.T) {
	b, err := os.ReadFile("testdata/dubbo-go-3.3.0-provider.txt")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProvider(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if p.Interface != "org.apache.dubbo.samples.api.GreetingsService" || p.Addr() != "127.0.0.1:20991" {
		t.Fatalf("got %s at %s", p.Interface, p.Addr())
	}
	l := Labels(p)
	want := map[string]string{"lane": "v1", "side": "provider", "release": "dubbo-golang-3.2.0", "application": "metamesh-greeter-v1",
		"methods": "Attachment_attachment_SayHello_sayHello_Sleep_sleep", "registry.role": "3"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	for _, k := range []string{"timestamp", "pid"} {
		if _, ok := l[k]; ok {
			t.Errorf("label %s present; registration-specific parameters are not labels", k)
		}
	}
}

func FuzzParseProvider(f *testing.F) {
	if b, err := os.ReadFile("testdata/dubbo-go-3.3.0-provider.txt"); err == nil {
		f.Add(string(b))
	}
	f.Add("dubbo://10.0.0.1:20880/com.x.I?version=1.0.0&group=a")
	f.Add("dubbo%3A%2F%2F%5B%3A%3A1%5D%3A1%2FI")
	f.Add("tri://h:1/I")
	f.Fuzz(func(t *testing.T, node string) {
		p, err := ParseProvider(node)
		if err != nil {
			if errors.Is(err, ErrNotDubbo) && strings.HasPrefix(node, "dubbo") {
				t.Fatalf("%q: dubbo URL called not dubbo", node)
			}
			return
		}
		if p.Interface == "" || p.Address == "" || p.Port < 1 || p.Port > 65535 {
			t.Fatalf("%q: accepted %+v", node, p)
		}
		for k, v := range Labels(p) {
			if !validLabel(k) || !validLabel(v) {
				t.Fatalf("%q: label %q=%q is not a valid label", node, k, v)
			}
		}
	})
}
