package wire

// LoopOptions says how many event loops to run and how they read and
// write (docs/proxy-config.md, "I/O mode").
type LoopOptions struct {
	// Count is how many loops run; DefaultLoopCount when 0 or less.
	Count int
	// NoIORing makes each loop read and write every socket with a
	// read(2) or write(2) of its own. Otherwise, where the kernel allows
	// io_uring (Linux 5.18 or later, not disabled by sysctl or a seccomp
	// profile), a loop reads the sockets a poll found readable, and sends
	// the writes of a turn, in one io_uring_enter each when there are two
	// or more.
	NoIORing bool
}
