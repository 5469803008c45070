// Package version holds the version of proxyfs's programs: proxyfsd
// prints it for -version and reports it in ping ("proxyfsd <Version>"),
// pfs prints it for -version. The one source of truth is the file VERSION
// at the top of the tree: the Makefile passes it to the Go programs, to
// libproxyfs (its version, soname and .pc) and checks proxyfs.h's
// PROXYFS_VERSION_* against it; the default below must equal it (a test
// says so). The Makefile also sets Commit:
//
//	go build -ldflags "-X github.com/proxyfs/proxyfs/internal/version.Version=$(cat VERSION) \
//	    -X github.com/proxyfs/proxyfs/internal/version.Commit=$(git describe --always --dirty)" ./cmd/...
package version

// Version is the release of this build (the VERSION file).
var Version = "2.0.0"

// Commit is the source revision it was built from ("" if unknown).
var Commit = ""

// String is Version, with the commit when known: "2.0.0 (a1b2c3d)".
func String() string {
	if Commit == "" {
		return Version
	}
	return Version + " (" + Commit + ")"
}
