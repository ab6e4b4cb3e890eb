package admin

import (
	"net"
	"net/http"
)

// guard refuses state-changing requests (any method but GET, HEAD and
// OPTIONS: POST /logging today) that a browser sends on behalf of another
// site. The admin endpoints have no authentication; the loopback default
// keeps other machines out, but not a web page in a browser on the same
// machine, which can send a cross-origin POST (CSRF) or reach 127.0.0.1
// under a name of its own (DNS rebinding). So:
//   - a cross-origin browser request (Sec-Fetch-Site, or an Origin whose
//     host is not the request's Host) gets 403, by net/http's
//     CrossOriginProtection;
//   - a request that names the admin by a host name other than localhost
//     gets 403: a rebound name would otherwise pass as same-origin.
//
// Tools without those headers (curl, scripts) are unaffected when they
// address the admin by IP or localhost.
func guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) && !literalHost(r.Host) {
			http.Error(w, "admin: state-changing requests must address the admin by IP address or localhost", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// literalHost reports whether a Host header names an IP address or
// localhost, which DNS can't rebind.
func literalHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return host == "localhost" || net.ParseIP(host) != nil
}

// Exposed reports whether an admin bound to addr can be reached from
// other machines: any address but a loopback one (an unspecified address,
// 0.0.0.0 or ::, listens on every interface).
func Exposed(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}
