// Package membership tells every llmesh node who else is in the mesh.
//
// Nodes find each other with hashicorp/memberlist gossip. Each node gossips a
// small [Meta] (role, location, region hint, tunnel address, version,
// draining flag) and keeps an immutable [Snapshot] of every node it has seen,
// including nodes that are dead or have left, which it forgets after ten
// minutes (dead) or one minute (left). The snapshot is rebuilt in this package's own goroutine and
// swapped atomically, so readers never touch memberlist's locks.
//
// Node names must be unique in the mesh, and operators should keep them
// stable across restarts: a name is the identity of a node. A node that
// comes back on a new address is accepted once its old entry has left
// gracefully, or has been dead for a short while.
//
// Raw memberlist never heals a partition: once peers have given up on each
// other, nobody probes again. Each node therefore re-joins its configured
// seeds periodically, with jitter, whenever they are not alive members.
//
// Gossip is for discovery, not trust: any holder of the gossip key can
// claim any metadata. Trust in an egress comes from the tunnel's mTLS or
// token. Use [Config.Label] so that two environments never merge.
//
// memberlist v0.7.0 does not expose a peer's suspicion state (the State
// field of memberlist.Node is never set, hashicorp/memberlist#266), so a
// member is alive until memberlist declares it dead: there is no suspect
// state. A graceful [Membership.Leave] first gossips a leaving flag in
// the node's metadata, which is how peers tell "left" from "dead".
package membership
