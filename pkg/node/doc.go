// Package node assembles one llmesh node from its configuration: the HTTP
// listener (provider routes on an ingress, admin routes on every node), the
// gossip membership, and the tunnel (a connection pool on an ingress, a gRPC
// server on an egress). It owns start-up order and graceful shutdown.
package node
