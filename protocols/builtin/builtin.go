// Package builtin registers metamesh's built-in codecs (dubbo, thrift,
// redis, triple). Import it for its side effect in a main package that
// builds a metamesh binary; plugin codecs are imported beside it.
package builtin

import (
	_ "github.com/metamesh/metamesh/protocols/dubbo"
	_ "github.com/metamesh/metamesh/protocols/redis"
	_ "github.com/metamesh/metamesh/protocols/thrift"
	_ "github.com/metamesh/metamesh/protocols/triple"
)
