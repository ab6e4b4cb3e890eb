// The IDL of the Thrift interop peers (see README.md to regenerate gen-go).
namespace go echo

service Echo {
  string echo(1: string msg),
  string ping(1: string msg),
  oneway void fire(1: string msg),
}

// A second service, served next to Echo by a TMultiplexedProcessor.
service Admin {
  string version(),
}
