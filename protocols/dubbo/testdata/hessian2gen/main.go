// Command hessian2gen writes the frames in ../hessian2/: requests and
// responses encoded by github.com/apache/dubbo-go-hessian2 v1.12.5 (the
// last release that still frames Dubbo), an encoder independent of the
// codec's own, with arguments of every shape the body walk must skip.
//
// It is its own module, so the product's go.mod never depends on it:
//
//	cd protocols/dubbo/testdata/hessian2gen && go run . ../hessian2
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
	"github.com/apache/dubbo-go-hessian2/java_exception"
)

// User is a POJO: a class definition then object instances.
type User struct {
	Name     string
	Age      int32
	Score    float64
	Born     time.Time
	Avatar   []byte
	Tags     []string
	Friend   *User
	Settings map[string]interface{}
}

func (User) JavaClassName() string { return "org.apache.dubbo.samples.api.User" }

// Address is a second class, so object instances use two definitions.
type Address struct {
	City string
	Zip  int64
}

func (Address) JavaClassName() string { return "org.apache.dubbo.samples.api.Address" }

const service = "org.apache.dubbo.samples.api.GreetingsService"

func main() {
	hessian.RegisterPOJO(&User{})
	hessian.RegisterPOJO(&Address{})
	dir := os.Args[1]

	shared := &User{Name: "shared", Age: 7}
	alice := &User{
		Name: "alice", Age: 30, Score: 98.25,
		Born:     time.Date(1990, 1, 2, 3, 4, 5, 0, time.UTC),
		Avatar:   []byte(strings.Repeat("\x00\x01\xfe", 367)), // 1101 bytes: a long binary
		Tags:     []string{"a", "bb", strings.Repeat("c", 40)},
		Friend:   shared,
		Settings: map[string]interface{}{"dark": true, "zoom": 1.5, "n": int64(1) << 40, "nested": []interface{}{int32(-1), "x", nil}},
	}
	long := strings.Repeat("héllo wörld 🌍 ", 300) // 4500 units: chunked (4096 units a chunk)
	atta := map[string]string{"user-id": "u-42", "batchjob": "true", "emoji": "go 🚀 now", "long": strings.Repeat("v", 1100)}

	write := func(name string, svc hessian.Service, h hessian.DubboHeader, body interface{}) {
		h.SerialID = 2
		b, err := hessian.NewHessianCodec(nil).Write(svc, h, body)
		if err != nil {
			panic(fmt.Sprintf("%s: %v", name, err))
		}
		if err := os.WriteFile(filepath.Join(dir, name+".bin"), b, 0o644); err != nil {
			panic(err)
		}
	}
	req := func(method string) hessian.Service {
		return hessian.Service{Path: service, Interface: service, Version: "1.0.0", Group: "blue", Method: method, Timeout: 3 * time.Second}
	}
	copyAtta := func() map[string]string {
		m := map[string]string{}
		for k, v := range atta {
			m[k] = v
		}
		return m
	}

	write("request-pojo", req("register"), hessian.DubboHeader{Type: hessian.PackageRequest_TwoWay, ID: 101},
		hessian.NewRequest([]interface{}{alice, &Address{City: "Hangzhou", Zip: 310000}, shared, "tail"}, copyAtta()))
	write("request-collections", req("bulk"), hessian.DubboHeader{Type: hessian.PackageRequest_TwoWay, ID: 102},
		hessian.NewRequest([]interface{}{
			[]interface{}{int32(1), int64(-300000), 3.5, float32(0.25), "s", nil, true, false},
			map[interface{}]interface{}{"k": "v", int32(1): []interface{}{}, "m": map[interface{}]interface{}{}},
			[]int32{1, 2, 3}, []string{"x", "y"}, []byte{}, int64(-9), int32(-2147483648), 0.0, 1.0, -128.0, 1e300,
			time.Unix(1700000000, 0), []*User{shared, shared},
		}, copyAtta()))
	write("request-longstring", req("echo"), hessian.DubboHeader{Type: hessian.PackageRequest_TwoWay, ID: 103},
		hessian.NewRequest([]interface{}{long, long[:100]}, copyAtta()))
	write("oneway-pojo", req("notify"), hessian.DubboHeader{Type: hessian.PackageRequest, ID: 104},
		hessian.NewRequest([]interface{}{alice}, copyAtta()))
	write("heartbeat-gohessian", hessian.Service{}, hessian.DubboHeader{Type: hessian.PackageHeartbeat, ID: 105},
		hessian.NewRequest([]interface{}{}, nil))
	write("heartbeat_reply-gohessian", hessian.Service{}, hessian.DubboHeader{Type: hessian.PackageHeartbeat, ID: 105, ResponseStatus: 20},
		hessian.NewResponse(nil, nil, nil))

	respAtta := map[string]string{"dubbo": "2.0.2", "served-by": "v1"}
	write("response-pojo", hessian.Service{}, hessian.DubboHeader{Type: hessian.PackageResponse, ID: 101, ResponseStatus: 20},
		hessian.NewResponse(alice, nil, respAtta))
	write("response-string-noatt", hessian.Service{}, hessian.DubboHeader{Type: hessian.PackageResponse, ID: 103, ResponseStatus: 20},
		hessian.NewResponse("hello", nil, nil))
	write("response-null", hessian.Service{}, hessian.DubboHeader{Type: hessian.PackageResponse, ID: 106, ResponseStatus: 20},
		hessian.NewResponse(nil, nil, respAtta))
	write("response-exception", hessian.Service{}, hessian.DubboHeader{Type: hessian.PackageResponse, ID: 107, ResponseStatus: 20},
		hessian.NewResponse(nil, java_exception.NewThrowable("boom"), respAtta))
	write("error-service-error", hessian.Service{}, hessian.DubboHeader{Type: hessian.PackageResponse, ID: 108, ResponseStatus: 70},
		hessian.NewResponse(nil, fmt.Errorf("service failed"), nil))
}
