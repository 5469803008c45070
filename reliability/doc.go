// Package reliability holds proxyfs's end-to-end reliability tests: crash
// cycles with SIGKILL, restart transparency, and load. They start the real
// proxyfsd binary (see internal/daemontest) and drive it through the Go
// client. The package has no code of its own beyond test helpers.
//
// Sizes are CI-sized by default; environment variables make them longer:
//
//	PROXYFS_CRASH_CYCLES   crash cycles (default 50)
//	PROXYFS_LOAD_CONNS     concurrent connections in the load test (default 500)
//	PROXYFS_LOAD_SECONDS   duration of the load test (default 5)
package reliability
