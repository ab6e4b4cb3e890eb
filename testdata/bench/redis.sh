#!/usr/bin/env bash
# Redis row of `make bench`: redis-benchmark against one redis-server
# directly, through twemproxy (Debian's nutcracker) and through metamesh,
# each proxy in front of the same one server, in one run, for pipelines of
# 16 and 1:
#
#   redis-benchmark -t set,get -n 200000 -c 50 -P {16,1}
#
# Prints requests/s for SET and GET, each proxy's CPU seconds per 100k
# requests (utime+stime from /proc/PID/stat over the run, divided by the
# run's 2 x 200000 requests), the same for redis-server and for
# redis-benchmark itself (a proxy changes what the server and the client
# spend too: the three share the machine's cores), the proxy's read/write
# system calls per request (syscr+syscw from /proc/PID/io, plus metamesh's
# io_uring_enter calls from its metamesh_event_loop_ring_enters_total,
# which /proc/PID/io does not count, said apart in the verdict; epoll calls
# not counted) and its context switches per request (voluntary+involuntary,
# summed over the threads in /proc/PID/task), then per pipeline depth a
# verdict against the targets of issue 21: metamesh throughput >=
# twemproxy's at -P 1 (>= 1.3 x at -P 16), CPU per request <= twemproxy's,
# and at -P 1 at most 2.3 read/write syscalls per request. With ROUNDS=N
# every target is measured N times per depth, round after round (rows
# "twemproxy 2", ...; every second round in the reverse order), each
# proxy's round read against twemproxy's, and the verdicts are read on the
# median of the rounds, every round's figure given after it: the same
# build moves by 0.1-0.2 in ratio between runs minutes apart. The verdict
# is printed, not enforced (the exit status is 0 when the runs complete):
# figures on a shared machine are noisy.
#
# Usage: METAMESH=bin/metamesh testdata/bench/redis.sh
#   env N (requests per test, 200000), CLIENTS (50), PIPELINES ("16 1"),
#   ROUNDS (1),
#   IO_MODE (metamesh's --io-mode: epoll, the default, or goroutine;
#   docs/proxy-config.md, "I/O mode"), IO_AB=1 (also a second metamesh in
#   the other mode, target "mm-epoll" or "mm-gorout", measured in the same
#   run and judged against the same targets); with IO_AB=1, AB_METAMESH (a
#   second metamesh binary for that proxy, target "mm-ab") and AB_MODE (its
#   --io-mode instead of the other one) compare two builds in one run.
#
# Everything listens on 127.0.0.1 only, on free ports the kernel hands out;
# a process whose port was taken in between exits, and the script fails
# rather than measure the wrong thing. Every process started here is stopped
# on exit, also on Ctrl-C or SIGTERM.
#
# How each side is configured (as an operator fronts one Redis):
# - redis-server: no persistence (save "", appendonly no), defaults otherwise.
# - nutcracker: one pool, `redis: true`, one server (weight 1), hash and
#   distribution at their defaults (fnv1a_64, ketama: with one server they
#   only cost a hash per key), `server_connections` at its default of 1
#   (twemproxy pipelines every client's commands over it), no auto ejection
#   (with one server there is nowhere else to go), no timeout (the default).
# - metamesh: `metamesh proxy` with one listener (codec redis,
#   default_service cache), one route to one STATIC cluster with the one
#   server, upstream connections at the default for a pipelined codec (one
#   per event loop, so one on this 2-core machine, in the epoll mode; 2 per
#   host in goroutine mode; a client's commands stay on one of them).
set -euo pipefail

# bash's `time` and awk read and print numbers with a dot whatever the
# caller's locale.
export LC_ALL=C

METAMESH=${METAMESH:-bin/metamesh}
N=${N:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINES=${PIPELINES:-16 1}
IO_MODE=${IO_MODE:-epoll}
ROUNDS=${ROUNDS:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "redis.sh: ROUNDS must be a positive count, not \"$ROUNDS\"" >&2; exit 1; }

missing=0
for tool in redis-server redis-benchmark nutcracker; do
	command -v "$tool" >/dev/null || missing=1
done
if [ "$missing" = 1 ]; then
	apt-get update -qq
	apt-get install -y -qq redis-server redis-tools nutcracker >/dev/null
fi
[ -x "$METAMESH" ] || { echo "redis.sh: $METAMESH is not an executable (run make build, or set METAMESH)" >&2; exit 1; }

. "$(dirname "$0")/lib.sh"

# syscalls PID prints the process's read+write system calls so far.
syscalls() {
	awk '$1=="syscr:" || $1=="syscw:" {n+=$2} END {print n}' "/proc/$1/io"
}

# switches PID prints the context switches of the process's threads so far
# (its own status counts the main thread only; a thread that exits takes
# its counts along, Go's and twemproxy's seldom do).
switches() {
	cat "/proc/$1"/task/*/status 2>/dev/null |
		awk '$1=="voluntary_ctxt_switches:" || $1=="nonvoluntary_ctxt_switches:" {n+=$2} END {print n}'
}

read -r redis_port twem_port mm_port admin_port stats_port ab_port ab_admin_port < <(free_ports 7)

redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
	--loglevel warning --logfile "$dir/redis-server.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_up "$redis_pid" "$redis_port" redis-server

cat >"$dir/nutcracker.yml" <<YAML
cache:
  listen: 127.0.0.1:$twem_port
  redis: true
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  server_connections: 1
  servers:
  - 127.0.0.1:$redis_port:1
YAML
# nutcracker's stats port must be free too (it binds 0.0.0.0:22222 unless told).
nutcracker -c "$dir/nutcracker.yml" -o "$dir/nutcracker.log" -s "$stats_port" -a 127.0.0.1 \
	-p "$dir/nutcracker.pid" &
twem_pid=$!
pids+=("$twem_pid")
wait_up "$twem_pid" "$twem_port" nutcracker

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
  load_assignment:
    cluster_name: cache
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $redis_port}}}
YAML
mm_flags=(proxy --bootstrap "$dir/bootstrap.yaml" --admin "127.0.0.1:$admin_port" --log-level warn --io-mode "$IO_MODE")
# METAMESH_PPROF=1 serves /debug/pprof on the admin address, printed below.
[ "${METAMESH_PPROF:-}" = 1 ] && mm_flags+=(--pprof)
"$METAMESH" "${mm_flags[@]}" >"$dir/metamesh.log" 2>&1 &
mm_pid=$!
pids+=("$mm_pid")
wait_up "$mm_pid" "$mm_port" metamesh
[ "${METAMESH_PPROF:-}" = 1 ] && echo "metamesh pprof: http://127.0.0.1:$admin_port/debug/pprof/"

# IO_AB=1: the same proxy in the other I/O mode, beside the first.
targets="direct twemproxy metamesh"
mm_targets=metamesh
if [ "${IO_AB:-}" = 1 ]; then
	ab_mode=epoll ab_name=mm-epoll
	[ "$IO_MODE" = epoll ] && ab_mode=goroutine ab_name=mm-gorout
	[ -n "${AB_MODE:-}" ] && ab_mode=$AB_MODE
	[ -n "${AB_METAMESH:-}" ] && ab_name=mm-ab
	sed "s/port_value: $mm_port}/port_value: $ab_port}/" "$dir/bootstrap.yaml" >"$dir/bootstrap-ab.yaml"
	"${AB_METAMESH:-$METAMESH}" proxy --bootstrap "$dir/bootstrap-ab.yaml" --admin "127.0.0.1:$ab_admin_port" --log-level warn \
		--io-mode "$ab_mode" >"$dir/metamesh-ab.log" 2>&1 &
	ab_pid=$!
	pids+=("$ab_pid")
	wait_up "$ab_pid" "$ab_port" "$ab_name"
	targets="$targets $ab_name"
	mm_targets="$mm_targets $ab_name"
fi

# A request through each path before measuring: the proxies dial upstream
# lazily, and a refused path should stop the run here, not skew a figure.
for port in "$twem_port" "$mm_port" ${ab_pid:+"$ab_port"}; do
	out=$(redis-cli -h 127.0.0.1 -p "$port" SET redis.sh:probe 1)
	[ "$out" = OK ] || { echo "redis.sh: SET through port $port answered: $out" >&2; exit 1; }
done

echo "redis-benchmark -t set,get -n $N -c $CLIENTS -P {${PIPELINES// /,}}; one redis-server $(redis-server --version | awk '{sub("v=", "", $3); print $3}'), nutcracker $(nutcracker --version 2>&1 | awk '{print $NF; exit}'), $("$METAMESH" version 2>/dev/null | head -1 || echo metamesh)"
echo "metamesh --io-mode $IO_MODE${ab_pid:+; $ab_name: --io-mode $ab_mode}; $ROUNDS round(s)"
echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
printf '%-12s %3s %10s %10s %12s %12s %12s %14s %14s\n' target P 'SET req/s' 'GET req/s' 'proxy CPU s' 'server CPU s' 'client CPU s' 'proxy r/w' 'proxy ctx'
printf '%-12s %3s %10s %10s %12s %12s %12s %14s %14s\n' '' '' '' '' 'per 100k req' 'per 100k req' 'per 100k req' 'syscalls/req' 'switches/req'

# Each round measures every target once per pipeline depth, back to back,
# so a proxy is read against the twemproxy run of its own round; every
# second round runs them in the reverse order, so no target always runs
# first or last (a run just after another one fares differently).
reversed=$(tr ' ' '\n' <<<"$targets" | tac | tr '\n' ' ')
declare -A set_l get_l cpu_l sys_l ring_l
for P in $PIPELINES; do
	for round in $(seq 1 "$ROUNDS"); do
		order=$targets
		[ $((round % 2)) = 0 ] && order=$reversed
		for target in $order; do
			admin=""
			case $target in
			mm-*) port=$ab_port pid=$ab_pid admin=$ab_admin_port ;;
			direct) port=$redis_port pid="" ;;
			twemproxy) port=$twem_port pid=$twem_pid ;;
			metamesh) port=$mm_port pid=$mm_pid admin=$admin_port ;;
			esac
			before=0 sys_before=0 sw_before=0 ring_before=0
			[ -n "$pid" ] && before=$(cpu "$pid") sys_before=$(syscalls "$pid") sw_before=$(switches "$pid")
			[ -n "$admin" ] && ring_before=$(ring_enters "$admin")
			server_before=$(cpu "$redis_pid")
			# redis-benchmark's CONFIG GET at start is refused by both proxies; it
			# warns on stderr and goes on. Its own CPU time is bash's `time`.
			TIMEFORMAT='%U %S'
			{ time out=$(redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$N" -c "$CLIENTS" -P "$P" -q --csv 2>"$dir/bench.err"); } 2>"$dir/time" ||
				{ echo "redis.sh: redis-benchmark against $target failed:" >&2; cat "$dir/bench.err" >&2; exit 1; }
			server=$(awk -v a="$server_before" -v b="$(cpu "$redis_pid")" -v n="$N" 'BEGIN{printf "%.3f", (b-a)/(2*n/100000)}')
			client=$(awk -v n="$N" '{printf "%.3f", ($1+$2)/(2*n/100000)}' "$dir/time")
			per=- sys=- sw=- ring=0
			if [ -n "$pid" ]; then
				per=$(awk -v a="$before" -v b="$(cpu "$pid")" -v n="$N" 'BEGIN{printf "%.3f", (b-a)/(2*n/100000)}')
				[ -n "$admin" ] && ring=$(awk -v a="$ring_before" -v b="$(ring_enters "$admin")" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/(2*n)}')
				sys=$(awk -v a="$sys_before" -v b="$(syscalls "$pid")" -v r="$ring" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/(2*n)+r}')
				sw=$(awk -v a="$sw_before" -v b="$(switches "$pid")" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/(2*n)}')
			fi
			s=$(awk -F'"' '$2=="SET"{printf "%.0f", $4}' <<<"$out")
			g=$(awk -F'"' '$2=="GET"{printf "%.0f", $4}' <<<"$out")
			if [ -z "$s" ] || [ -z "$g" ]; then
				echo "redis.sh: no SET/GET figures from redis-benchmark against $target:" >&2
				echo "$out" >&2
				exit 1
			fi
			# Each target's figures per depth, round after round, as
			# comma-separated lists.
			set_l[$target,$P]+="${set_l[$target,$P]:+,}$s"
			get_l[$target,$P]+="${get_l[$target,$P]:+,}$g"
			cpu_l[$target,$P]+="${cpu_l[$target,$P]:+,}$per"
			sys_l[$target,$P]+="${sys_l[$target,$P]:+,}$sys"
			ring_l[$target,$P]+="${ring_l[$target,$P]:+,}$ring"
			name=$target
			[ "$round" -gt 1 ] && name="$target $round"
			printf '%-12s %3s %10s %10s %12s %12s %12s %14s %14s\n' "$name" "$P" "$s" "$g" "$per" "$server" "$client" "$sys" "$sw"
		done
	done
done

# The verdicts read each figure's median over the rounds (a proxy's
# against twemproxy's of the same round); with more than one round, every
# round's figure follows it.
echo
for P in $PIPELINES; do
	for mm in $mm_targets; do
		awk -v p="$P" -v name="$mm" -v ms="${set_l[$mm,$P]}" -v mg="${get_l[$mm,$P]}" -v mc="${cpu_l[$mm,$P]}" \
			-v ts="${set_l[twemproxy,$P]}" -v tg="${get_l[twemproxy,$P]}" -v tc="${cpu_l[twemproxy,$P]}" \
			-v sys="${sys_l[$mm,$P]}" -v ring="${ring_l[$mm,$P]}" '
		# ratios A B returns the comma-separated list of A[i]/B[i] over the
		# comma-separated lists A and B, unrounded; when B misses a figure
		# or has one of 0 it sets bad, and that verdict is MISSED.
		function ratios(a, b,   x, y, n, i, out) {
			n = split(a, x, ",")
			if (split(b, y, ",") != n) bad = 1
			for (i = 1; i <= n; i++) {
				if (!(y[i] > 0)) { bad = 1; y[i] = 1 }
				out = out (i > 1 ? "," : "") x[i] / y[i]
			}
			return out
		}
		# median LIST sets m to the median of the comma-separated LIST
		# (unrounded: the verdicts compare it) and returns how it reads,
		# each figure with fmt: "0.99" for one figure, "median 0.990 of
		# 0.95, 0.99, 1.02" for more, in round order (the median with one
		# digit more, so a median of two rounds that misses a target by
		# less than 0.005 does not read as on it).
		function median(list, fmt,   v, n, i, j, t, shown) {
			n = split(list, v, ",")
			for (i = 1; i <= n; i++) {
				v[i] += 0
				shown = shown (i > 1 ? ", " : "") sprintf(fmt, v[i])
			}
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
			m = (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
			if (n == 1) return sprintf(fmt, m)
			return sprintf("median %.3f of %s", m, shown)
		}
		BEGIN {
			want = (p == 1) ? 1.0 : 1.3
			s = median(ratios(ms, ts), "%.2f"); rs = m
			g = median(ratios(mg, tg), "%.2f"); rg = m
			thrBad = bad; bad = 0
			c = median(ratios(mc, tc), "%.2f"); rc = m
			if (thrBad) s = g = "n/a (no twemproxy figure)"
			if (bad) c = "n/a (no twemproxy figure)"
			thr = (rs < rg) ? rs : rg
			printf "P=%-2s %s/twemproxy throughput: SET %s, GET %s (target >= %.2f: %s); CPU per request vs twemproxy: %s (target <= 1.00: %s)",
				p, name, s, g, want, (!thrBad && thr >= want ? "met" : "MISSED"), c, (!bad && rc <= 1 ? "met" : "MISSED")
			if (p == 1) {
				y = median(sys, "%.2f"); my = m
				r = median(ring, "%.2f")
				printf "; syscalls/req %s, io_uring_enter %s (target <= 2.30: %s)", y, r, (my <= 2.3 ? "met" : "MISSED")
			}
			printf "\n"
		}'
	done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
