// Package buildinfo says which synhold a binary was built from, for the
// tools' -version flags and the headers that name the server.
package buildinfo

import "runtime/debug"

// modulePath is synhold's module.
const modulePath = "github.com/synhold/synhold"

// Version is synhold's version in this binary: the module version when it
// was built from a tagged module (go install ...@v1.2.3), else "devel" and
// the VCS revision it was built from (a "+dirty" suffix for uncommitted
// changes), else "devel". Read from the binary's build information, whether
// synhold is the main module or a dependency of it.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return version(bi)
}

func version(bi *debug.BuildInfo) string {
	m := &bi.Main
	if m.Path != modulePath {
		m = nil
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				m = d
				if d.Replace != nil {
					m = d.Replace
				}
				break
			}
		}
	}
	if m != nil && m.Version != "" && m.Version != "(devel)" {
		return m.Version
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if m == nil || m != &bi.Main || rev == "" {
		return "devel"
	}
	return "devel-" + rev[:min(len(rev), 12)] + dirty
}
