// Package version holds the llmesh version, set at build time with
// -ldflags "-X github.com/llmesh/llmesh/pkg/version.Version=v1.2.3".
package version

// Version is the software version gossiped in node metadata and printed by -version.
var Version = "dev"
