# lib.sh: what the bench scripts share, sourced after the script has
# checked its tools: a scratch folder ($dir) removed on exit with every
# process started in the background (add their PIDs to pids), free
# loopback ports, waiting for a listener, and a process's CPU time.
# Messages name the script that sourced it.

me=$(basename "$0")
dir=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_ports N prints N distinct free loopback ports: all are bound at once,
# so none is handed out twice, then released for the servers to take.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_up PID PORT NAME waits until PORT accepts connections while PID (the
# process meant to listen there, logging to $dir/NAME.log) is alive.
wait_up() {
	local i
	for i in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || { echo "$me: $3 exited (port $2 taken?); its log:" >&2; cat "$dir/$3.log" >&2 || true; exit 1; }
		if [ "$i" -gt 1 ] && (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
			# Still alive a moment later: the listener is ours, not a stranger's.
			sleep 0.2
			kill -0 "$1" 2>/dev/null && return 0
		fi
		sleep 0.1
	done
	echo "$me: $3 does not listen on $2 after 10s" >&2
	exit 1
}

# cpu PID prints the process's utime+stime in seconds.
cpu() {
	awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"
}

# ring_enters PORT prints the io_uring_enter calls of the metamesh whose
# admin address is 127.0.0.1:PORT (metamesh_event_loop_ring_enters_total;
# 0 for a build without the counter): system calls /proc/PID/io does not
# count.
ring_enters() {
	python3 - "$1" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
n = 0
for line in text.splitlines():
    if line.startswith("metamesh_event_loop_ring_enters_total "):
        n = int(float(line.split()[1]))
print(n)
PY
}
