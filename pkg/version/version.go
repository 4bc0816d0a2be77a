// Package version holds the llmesh version, set at build time with
// -ldflags "-X github.com/llmesh/llmesh/pkg/version.Version=v1.2.3".
// Without it, a binary built by `go install module@version` reports the
// module version Go recorded in it.
package version

import "runtime/debug"

// Version is the software version gossiped in node metadata and printed by -version.
var Version = "dev"

func init() {
	if Version != "dev" {
		return
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		Version = fromBuild(info.Main.Version, Version)
	}
}

// fromBuild is the module version Go recorded, unless it recorded none:
// "(devel)" for a build inside the module's own tree.
func fromBuild(module, fallback string) string {
	if module == "" || module == "(devel)" {
		return fallback
	}
	return module
}
