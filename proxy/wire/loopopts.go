package wire

// LoopOptions says how many event loops to run and how they write
// (docs/proxy-config.md, "I/O mode").
type LoopOptions struct {
	// Count is how many loops run; DefaultLoopCount when 0 or less.
	Count int
	// NoSendRing makes each loop write every socket with a write(2) of
	// its own. Otherwise a loop sends the writes of a turn that has two
	// or more sockets to write in one io_uring_enter, where the kernel
	// allows io_uring (Linux 5.18 or later, not disabled by sysctl or a
	// seccomp profile), and with write(2) where it does not.
	NoSendRing bool
}
