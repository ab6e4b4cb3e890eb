#!/usr/bin/env bash
# The demo behind `make run`: two real dubbo-go greeter servers (v1 on
# 20881, v2 on 20882) and two apache/thrift Echo servers (v1 on 9091, v2 on
# 9092), two redis-servers (6380, 6381), `metamesh run` on the YAML in this
# folder (Dubbo on 20880, Thrift on 9090, Redis on 6379), and two clients
# printing where their calls go each second.
# Ctrl-C stops everything this script started.
set -euo pipefail
bin=${BIN:-bin}
here=$(dirname "$0")
pids=()
cleanup() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_ready() { # name url-or-port
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "$1 did not start listening on port $2" >&2
	exit 1
}

"$bin/greeter-server" --addr 127.0.0.1:20881 --version v1 >/dev/null & pids+=($!)
"$bin/greeter-server" --addr 127.0.0.1:20882 --version v2 >/dev/null & pids+=($!)
"$bin/thrift-server" --addr 127.0.0.1:9091 --version v1 2>/dev/null & pids+=($!)
"$bin/thrift-server" --addr 127.0.0.1:9092 --version v2 2>/dev/null & pids+=($!)
redis-server --port 6380 --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & pids+=($!)
redis-server --port 6381 --bind 127.0.0.1 --save '' --appendonly no --loglevel warning & pids+=($!)
wait_ready redis-users 6380
wait_ready redis-rest 6381
wait_ready greeter-v1 20881
wait_ready greeter-v2 20882
wait_ready thrift-v1 9091
wait_ready thrift-v2 9092
"$bin/metamesh" run --config "$here" --listen-address 127.0.0.1 --admin 127.0.0.1:15000 --log-level warn & pids+=($!)
wait_ready metamesh 20880
wait_ready metamesh 9090
wait_ready metamesh 6379

cat <<'MSG'
metamesh demo:
  dubbo:  client -> proxy 127.0.0.1:20880 -> greeter v1 (20881) / v2 (20882)
  thrift: client -> proxy 127.0.0.1:9090  -> echo v1 (9091) / v2 (9092)
  redis:  redis-cli -p 6379 -> user:* on 6380, other keys on 6381
          (try: redis-cli -p 6379 set user:1 a; redis-cli -p 6380 get user:1)
  routes: batchjob=true (attachment / THeader header) -> v2 always;
          everything else 80% v1 / 20% v2
  admin:  http://127.0.0.1:15000/metrics, /clusters, /config_dump
Ctrl-C to stop.
MSG
"$bin/demo-client" --protocol thrift --addr 127.0.0.1:9090 & pids+=($!)
"$bin/demo-client" --addr 127.0.0.1:20880 & pids+=($!)
wait "${pids[-1]}"
