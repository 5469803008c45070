// Package version holds the version of proxyfs's programs: proxyfsd
// prints it for -version and reports it in ping ("proxyfsd <Version>"),
// pfs prints it for -version. It is set at build time:
//
//	go build -ldflags "-X github.com/proxyfs/proxyfs/internal/version.Version=1.2.3" ./cmd/...
package version

// Version is the version of this build.
var Version = "0.1.0"
