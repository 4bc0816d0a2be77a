// Package role names what a node does in the mesh: an ingress takes the
// clients' requests, an egress calls the providers for ingress nodes. The
// config, the gossip metadata and the tunnel's certificates all carry it.
package role
