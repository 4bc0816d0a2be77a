// Package meshtls is the trust layer of the tunnel between ingress and egress
// nodes: mutual TLS 1.3 with certificates signed by the mesh CA.
//
// Gossip only discovers nodes; any holder of the gossip key can claim to be
// any egress. So an ingress dialing an egress accepts the connection only if
// the server's certificate chains to the mesh CA and names exactly the node
// that gossip announced: its role, hint and name, carried as one URI SAN of
// the form llmesh://{role}/{hint}/{name}. An egress accepts only clients whose
// certificate chains to the mesh CA and carries an allowed role.
//
// A Store holds the node's own certificate and the CA pool. Handshakes read
// them through callbacks, so Reload (on SIGHUP, or by Watch when the files
// change) affects new connections only and never drops live ones. NewCA and
// Issue create a development CA and node certificates; the `certs` command
// of package cli writes them to files.
package meshtls
