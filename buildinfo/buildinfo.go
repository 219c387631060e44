// Package buildinfo says which program wrote a record: its version and the
// commit it was built from, read from the Go build information.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

var read = sync.OnceValues(func() (string, string) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", ""
	}
	version := bi.Main.Version
	if version == "(devel)" {
		version = ""
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "+dirty"
	}
	return version, rev
})

// Version returns override when it is set and not "dev" (a -ldflags -X
// value), else the module version from the build information, else "dev".
func Version(override string) string {
	if override != "" && override != "dev" {
		return override
	}
	if v, _ := read(); v != "" {
		return v
	}
	return "dev"
}

// Commit returns the VCS revision the binary was built from, with "+dirty"
// when the work tree had changes, or "" when the build recorded none (go run
// and go test do not stamp it; go build and go install do).
func Commit() string {
	_, rev := read()
	return rev
}
