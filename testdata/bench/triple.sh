#!/usr/bin/env bash
# Triple row of `make bench`: unary gRPC echo (the wire format Triple
# shares) from a grpc-go client to a grpc-go server, directly and through
# metamesh (a triple listener, one route, one STATIC cluster with the one
# server), in one run:
#
#   grpc-echo load --conns $CONNS --concurrency $CALLERS --payload 64 --warmup 2s --duration $DURATION
#
# Prints for each run requests/s, latency percentiles, and the CPU seconds
# per 100k requests of the server, the proxy and the client (utime+stime:
# /proc/PID/stat for the server and the proxy, getrusage for the client),
# then per request of each the read/write system calls (syscr+syscw of
# /proc/PID/io; epoll calls not counted) and context switches (voluntary
# and involuntary, summed over /proc/PID/task/*/status; the client's
# from getrusage), then the proxied/direct throughput ratio against issue 20's target
# (>= 0.75) and the proxy's CPU per request. The verdict is printed, not
# enforced (the exit status is 0 when the runs complete and every reply
# echoed its request): on a shared 2-core machine the client, the server
# and the proxy take CPU from each other, so figures taken under load are
# only indicative; the script prints the load average at start and end.
#
# Usage: METAMESH=bin/metamesh GRPC_ECHO=bin/grpc-echo testdata/bench/triple.sh
#   env CONNS (client connections, 4), CALLERS (64), DURATION (10s).
#
# Everything listens on 127.0.0.1 only, on free ports; every process
# started here is stopped on exit, also on Ctrl-C or SIGTERM.
set -euo pipefail

METAMESH=${METAMESH:-bin/metamesh}
GRPC_ECHO=${GRPC_ECHO:-bin/grpc-echo}
CONNS=${CONNS:-4}
CALLERS=${CALLERS:-64}
DURATION=${DURATION:-10s}

for bin in "$METAMESH" "$GRPC_ECHO"; do
	[ -x "$bin" ] || { echo "triple.sh: $bin is not an executable (run make build peers, or set METAMESH and GRPC_ECHO)" >&2; exit 1; }
done

. "$(dirname "$0")/lib.sh"

read -r srv_port mm_port admin_port < <(free_ports 3)

"$GRPC_ECHO" serve --addr "127.0.0.1:$srv_port" >"$dir/grpc-echo.log" 2>&1 &
srv_pid=$!
pids+=("$srv_pid")
wait_up "$srv_pid" "$srv_port" grpc-echo

cat >"$dir/bootstrap.yaml" <<YAML
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: triple
  address: {socket_address: {address: 127.0.0.1, port_value: $mm_port}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        codec: triple
        route_config_name: triple
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: triple
  virtual_hosts:
  - name: echo
    domains: [metamesh.bench.Echo]
    routes:
    - name: all
      match: {prefix: ""}
      route: {cluster: echo}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: echo
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: echo
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $srv_port}}}
YAML
"$METAMESH" proxy --bootstrap "$dir/bootstrap.yaml" --admin "127.0.0.1:$admin_port" --log-level warn >"$dir/metamesh.log" 2>&1 &
mm_pid=$!
pids+=("$mm_pid")
wait_up "$mm_pid" "$mm_port" metamesh

# A short load through each path first: the proxy dials upstream lazily,
# and a refused path should stop the run here, not skew a figure.
for port in "$srv_port" "$mm_port"; do
	"$GRPC_ECHO" load --addr "127.0.0.1:$port" --conns 1 --concurrency 1 --warmup 0s --duration 200ms >/dev/null ||
		{ echo "triple.sh: the probe through port $port failed" >&2; exit 1; }
done

echo "grpc-echo load --conns $CONNS --concurrency $CALLERS --payload 64 --warmup 2s --duration $DURATION; grpc-go client and server, $("$METAMESH" version 2>/dev/null | head -1 || echo metamesh)"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf '%-8s %9s %8s %8s %8s %8s   %-28s\n' run 'req/s' 'p50 µs' 'p99 µs' 'p999 µs' 'max µs' 'CPU s/100k req: server proxy client'

# syscalls PID prints the process's read+write system calls so far.
syscalls() {
	awk '$1=="syscr:" || $1=="syscw:" {n+=$2} END {print n}' "/proc/$1/io"
}

# switches PID prints the context switches of the process's threads so far.
switches() {
	cat "/proc/$1"/task/*/status 2>/dev/null |
		awk '$1=="voluntary_ctxt_switches:" || $1=="nonvoluntary_ctxt_switches:" {n+=$2} END {print n}'
}

declare -A rps proxy_per io_line
for target in direct metamesh; do
	case $target in
	direct) port=$srv_port ;;
	metamesh) port=$mm_port ;;
	esac
	srv_before=$(cpu "$srv_pid") mm_before=$(cpu "$mm_pid")
	srv_sys0=$(syscalls "$srv_pid") mm_sys0=$(syscalls "$mm_pid") srv_sw0=$(switches "$srv_pid") mm_sw0=$(switches "$mm_pid")
	out=$("$GRPC_ECHO" load --addr "127.0.0.1:$port" --conns "$CONNS" --concurrency "$CALLERS" --payload 64 \
		--warmup 2s --duration "$DURATION" 2>"$dir/load.err") ||
		{ echo "triple.sh: the load against $target failed:" >&2; cat "$dir/load.err" >&2; echo "$out" >&2; exit 1; }
	srv_after=$(cpu "$srv_pid") mm_after=$(cpu "$mm_pid")
	srv_sys1=$(syscalls "$srv_pid") mm_sys1=$(syscalls "$mm_pid") srv_sw1=$(switches "$srv_pid") mm_sw1=$(switches "$mm_pid")
	# The server's and the proxy's CPU include the 2 s warmup: counted
	# against the warmup's requests too, at the measured rate.
	read -r r p50 p99 p999 mx calls ccpu csys csw < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(round(r["rps"]), r["p50_us"], r["p99_us"], r["p999_us"], r["max_us"], r["calls"], r["cpu_s"], r["syscalls"], r["switches"])' "$out")
	secs=${DURATION%s}
	per() { awk -v a="$1" -v b="$2" -v rps="$r" -v s="$secs" 'BEGIN{printf "%.3f", (b-a)/(rps*(s+2)/100000)}'; }
	s_per=$(per "$srv_before" "$srv_after")
	m_per=-
	[ "$target" = metamesh ] && m_per=$(per "$mm_before" "$mm_after")
	c_per=$(awk -v c="$ccpu" -v n="$calls" 'BEGIN{printf "%.3f", c/(n/100000)}')
	# Counts per request: the server's and the proxy's over warmup and
	# measured window (as their CPU), the client's over the measured one.
	cnt() { awk -v a="$1" -v b="$2" -v rps="$r" -v s="$secs" 'BEGIN{printf "%.2f", (b-a)/(rps*(s+2))}'; }
	cl() { awk -v c="$1" -v n="$calls" 'BEGIN{printf "%.2f", c/n}'; }
	m_sys=- m_sw=-
	[ "$target" = metamesh ] && m_sys=$(cnt "$mm_sys0" "$mm_sys1") m_sw=$(cnt "$mm_sw0" "$mm_sw1")
	io_line[$target]=$(printf '%-8s %8s %6s %6s   %8s %6s %6s' "$target" "$(cnt "$srv_sys0" "$srv_sys1")" "$m_sys" "$(cl "$csys")" \
		"$(cnt "$srv_sw0" "$srv_sw1")" "$m_sw" "$(cl "$csw")")
	rps[$target]=$r proxy_per[$target]=$m_per
	printf '%-8s %9s %8s %8s %8s %8s   %15s %6s %6s\n' "$target" "$r" "$p50" "$p99" "$p999" "$mx" "$s_per" "$m_per" "$c_per"
done

echo
printf '%-8s %-22s   %-22s\n' run 'r/w syscalls per req:' 'switches per req:'
printf '%-8s %8s %6s %6s   %8s %6s %6s\n' '' server proxy client server proxy client
for target in direct metamesh; do echo "${io_line[$target]}"; done

echo
awk -v m="${rps[metamesh]}" -v d="${rps[direct]}" -v c="${proxy_per[metamesh]}" 'BEGIN {
	ratio = m / d
	printf "proxied/direct throughput %.2f (target >= 0.75: %s); proxy CPU %.1f µs per request\n", ratio, (ratio >= 0.75 ? "met" : "MISSED"), c * 10
}'
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
