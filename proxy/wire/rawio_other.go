//go:build !linux || race

package wire

import "syscall"

// sysRead and sysWrite are syscall.Read and syscall.Write outside Linux
// and in race builds (rawio_linux.go says why Linux differs).
func sysRead(fd int, p []byte) (int, error) { return syscall.Read(fd, p) }

func sysWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
