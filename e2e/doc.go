// Package e2e tests the mesh as users run it: several real nodes in one
// process on loopback addresses, real memberlist gossip, real gRPC tunnels,
// the repository's fake provider, and the official OpenAI and Anthropic Go
// SDKs as clients. binaries_test.go also builds and runs the real commands.
package e2e
