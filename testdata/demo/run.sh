#!/usr/bin/env bash
# The demo behind `make run`: two real dubbo-go greeter servers (v1 on
# 20881, v2 on 20882), the metamesh proxy on 20880 with the config in
# bootstrap.yaml, and a client printing where its calls go each second.
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
wait_ready greeter-v1 20881
wait_ready greeter-v2 20882
"$bin/metamesh" run --config "$here" --listen-address 127.0.0.1 --admin 127.0.0.1:15000 --log-level warn & pids+=($!)
wait_ready metamesh 20880

cat <<'MSG'
metamesh demo: client -> proxy 127.0.0.1:20880 -> greeter v1 (20881) / v2 (20882)
  routes: batchjob=true -> v2 always; everything else 80% v1 / 20% v2
  admin:  http://127.0.0.1:15000/metrics, /clusters, /config_dump
Ctrl-C to stop.
MSG
"$bin/demo-client" --addr 127.0.0.1:20880 & pids+=($!)
wait "${pids[-1]}"
