// Package proxy is the HTTP proxy core shared by both paths of the mesh: it
// serves /{provider}/{rest}, validates the request, asks a Router where it
// goes, and streams the exchange with one httputil.ReverseProxy. The direct
// path and the tunnelled path differ only in the RoundTripper that carries
// the exchange; on an egress the same handler serves the requests that
// arrive through the tunnel.
package proxy
