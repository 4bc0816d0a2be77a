// Package tunnel carries HTTP exchanges from an ingress to an egress over
// gRPC: one bidirectional stream per request, on one long-lived connection
// per egress node.
//
// On the ingress, a Conn is an http.RoundTripper, so the tunnelled path is the
// same httputil.ReverseProxy as the direct path with another transport. On the
// egress, a Server turns each stream back into an *http.Request and serves it
// with the same proxy handler the direct path uses. Frames are at most
// FrameSize bytes; bodies stream in both directions as they are read, and
// cancelling either side cancels the other through the stream's context.
package tunnel
