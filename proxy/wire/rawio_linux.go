//go:build linux && !race

package wire

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) of the read loops and
// writers, always on non-blocking sockets: they never wait, so they are
// made without telling the scheduler that a system call began
// (syscall.RawSyscall, not syscall.Syscall). Under load on few cores the
// kernel often deschedules a thread inside such a call (the write woke the
// peer); the scheduler, seeing the processor "in a system call", would
// then hand it to another thread and wake that one, and its monitor would
// keep polling every 20 µs: a third of the proxy's context switches at
// redis-benchmark -P 1 (docs/benchmarks.md, "Where the switches come
// from"). Race builds keep syscall.Read and syscall.Write (rawio_other.go),
// whose annotations tell the race detector that a read sees what a write
// sent.
func sysRead(fd int, p []byte) (int, error) { return rawIO(syscall.SYS_READ, fd, p) }

func sysWrite(fd int, p []byte) (int, error) { return rawIO(syscall.SYS_WRITE, fd, p) }

// rawIO returns what syscall.Read and syscall.Write do: -1 and the errno
// on failure.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}
