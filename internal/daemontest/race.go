//go:build race

package daemontest

// raceEnabled is true when the test binary is built with -race; the
// daemon is then built with -race too.
const raceEnabled = true
