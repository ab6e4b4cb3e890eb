#!/usr/bin/env bash
# Redis Cluster row of `make bench`: a cluster of 6 redis-servers (3
# primaries, a replica each, created with redis-cli --cluster create)
# measured two ways in one run, for pipelines of 16 and 1:
#
#   through metamesh (redis-benchmark can't speak cluster; metamesh, with
#   the cluster's nodes as seeds and readPolicy MASTER, routes each
#   command by its key's slot):
#     redis-benchmark -t set,get -n 200000 -c 50 -P {16,1}
#   straight to the nodes, for reference (redis-benchmark's own cluster
#   mode):
#     redis-benchmark --cluster -t set,get -n 200000 -c 50 -P {16,1}
#
# Prints requests/s for SET and GET, metamesh's CPU seconds per 100k
# requests (utime+stime from /proc/PID/stat over its run, divided by the
# run's 2 x N requests), and per pipeline depth the ratio metamesh/direct.
# Figures on a shared machine are noisy; nothing is enforced.
#
# Usage: METAMESH=bin/metamesh testdata/bench/redis-cluster.sh
#   env N (requests per test, 200000), CLIENTS (50), PIPELINES ("16 1").
#
# Everything listens on 127.0.0.1 on free ports; every process started
# here is stopped on exit.
set -euo pipefail

METAMESH=${METAMESH:-bin/metamesh}
N=${N:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINES=${PIPELINES:-16 1}

for tool in redis-server redis-cli redis-benchmark; do
	command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null; break; }
done
[ -x "$METAMESH" ] || { echo "redis-cluster.sh: $METAMESH is not an executable (run make build, or set METAMESH)" >&2; exit 1; }

. "$(dirname "$0")/lib.sh"

read -r -a ports < <(free_ports 14)
nodes=("${ports[@]:0:6}") buses=("${ports[@]:6:6}") mm_port=${ports[12]} admin_port=${ports[13]}
addrs=()
for i in 0 1 2 3 4 5; do
	p=${nodes[$i]}
	redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
		--cluster-enabled yes --cluster-port "${buses[$i]}" --cluster-config-file "$dir/nodes-$p.conf" --dir "$dir" \
		--logfile "$dir/redis-$p.log" &
	pids+=($!)
	wait_up "$!" "$p" "redis-$p"
	addrs+=("127.0.0.1:$p")
done
redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
	{ echo "redis-cluster.sh: redis-cli --cluster create failed:" >&2; cat "$dir/create.log" >&2; exit 1; }
for i in $(seq 1 100); do
	redis-cli -p "${nodes[0]}" cluster info | grep -q 'cluster_state:ok' && break
	sleep 0.1
done

endpoints=""
for p in "${nodes[@]:0:3}"; do
	endpoints+="      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $p}}}"$'\n'
done
cat >"$dir/bootstrap.yaml" <<YAML
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: redis
  address: {socket_address: {address: 127.0.0.1, port_value: $mm_port}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        codec: redis
        route_config_name: redis
        default_service: cache
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: redis
  virtual_hosts:
  - name: cache
    domains: [cache]
    routes:
    - name: all
      match: {prefix: ""}
      route: {cluster: cache}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: cache
  type: STATIC
  connect_timeout: 1s
  lb_policy: ROUND_ROBIN
  metadata:
    filter_metadata:
      metamesh.redis_cluster: {readPolicy: MASTER, refreshInterval: 10s}
  load_assignment:
    cluster_name: cache
    endpoints:
    - lb_endpoints:
$endpoints
YAML
"$METAMESH" proxy --bootstrap "$dir/bootstrap.yaml" --admin "127.0.0.1:$admin_port" --log-level warn >"$dir/metamesh.log" 2>&1 &
mm_pid=$!
pids+=("$mm_pid")
wait_up "$mm_pid" "$mm_port" metamesh
for k in a b c d e f; do
	out=$(redis-cli -p "$mm_port" SET "redis-cluster.sh:$k" 1)
	[ "$out" = OK ] || { echo "redis-cluster.sh: SET through metamesh answered: $out" >&2; exit 1; }
done

echo "redis-benchmark -t set,get -n $N -c $CLIENTS -P {${PIPELINES// /,}}; a Redis Cluster of 3 primaries and 3 replicas, redis-server $(redis-server --version | awk '{sub("v=", "", $3); print $3}'), $("$METAMESH" version 2>/dev/null | head -1 || echo metamesh)"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf '%-10s %3s %12s %12s %12s\n' target P 'SET req/s' 'GET req/s' 'proxy CPU s'
printf '%-10s %3s %12s %12s %12s\n' '' '' '' '' 'per 100k req'
declare -A set_rps get_rps
for P in $PIPELINES; do
	for target in direct metamesh; do
		per=-
		if [ "$target" = direct ]; then
			out=$(redis-benchmark --cluster -h 127.0.0.1 -p "${nodes[0]}" -t set,get -n "$N" -c "$CLIENTS" -P "$P" -q --csv 2>"$dir/bench.err") ||
				{ echo "redis-cluster.sh: redis-benchmark --cluster failed:" >&2; cat "$dir/bench.err" >&2; exit 1; }
		else
			before=$(cpu "$mm_pid")
			out=$(redis-benchmark -h 127.0.0.1 -p "$mm_port" -t set,get -n "$N" -c "$CLIENTS" -P "$P" -q --csv 2>"$dir/bench.err") ||
				{ echo "redis-cluster.sh: redis-benchmark through metamesh failed:" >&2; cat "$dir/bench.err" >&2; exit 1; }
			per=$(awk -v a="$before" -v b="$(cpu "$mm_pid")" -v n="$N" 'BEGIN{printf "%.3f", (b-a)/(2*n/100000)}')
		fi
		s=$(awk -F'"' '$2=="SET"{printf "%.0f", $4}' <<<"$out")
		g=$(awk -F'"' '$2=="GET"{printf "%.0f", $4}' <<<"$out")
		[ -n "$s" ] && [ -n "$g" ] || { echo "redis-cluster.sh: no SET/GET figures against $target:" >&2; echo "$out" >&2; exit 1; }
		set_rps[$target,$P]=$s get_rps[$target,$P]=$g
		printf '%-10s %3s %12s %12s %12s\n' "$target" "$P" "$s" "$g" "$per"
	done
done
echo
for P in $PIPELINES; do
	awk -v p="$P" -v ms="${set_rps[metamesh,$P]}" -v mg="${get_rps[metamesh,$P]}" \
		-v ds="${set_rps[direct,$P]}" -v dg="${get_rps[direct,$P]}" \
		'BEGIN { printf "P=%-2s metamesh/redis-benchmark --cluster: SET %.2f, GET %.2f\n", p, ms/ds, mg/dg }'
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
