//go:build !race

package file

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
