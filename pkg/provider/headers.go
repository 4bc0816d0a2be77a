package provider

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHop are the headers that belong to one connection, never forwarded
// (RFC 9110 section 7.6.1, plus the legacy ones proxies still see).
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// clientIdentifying name the client or the path it came by. A provider must
// not learn who is behind the mesh or where they are.
var clientIdentifying = []string{
	"Forwarded", "Via", "X-Real-Ip", "Cf-Connecting-Ip", "Cf-Connecting-Ipv6", "True-Client-Ip",
	"Cf-Ipcountry", "Cf-Ray", "Cf-Visitor", "Cf-Worker", "Cdn-Loop", "X-Client-Ip", "X-Cluster-Client-Ip",
	"Fastly-Client-Ip", "X-Original-Forwarded-For",
}

// MeshHeaderPrefix marks headers llmesh itself reads or writes; clients may
// not smuggle them to a provider.
const MeshHeaderPrefix = "X-Mesh-"

// CleanRequestHeader removes, in place, every header that must not reach a
// provider: hop-by-hop headers and those named by Connection, headers that
// identify the client, and llmesh's own control headers. Everything else (the
// SDKs' authorization, anthropic-*, openai-*, x-stainless-*, user-agent,
// accept, accept-encoding, idempotency-key and custom headers) passes.
func CleanRequestHeader(h http.Header) {
	removeHopByHop(h)
	for _, k := range clientIdentifying {
		delete(h, k)
	}
	for k := range h {
		if hasPrefixFold(k, "X-Forwarded-") || hasPrefixFold(k, MeshHeaderPrefix) {
			delete(h, k)
		}
	}
}

// CleanResponseHeader removes hop-by-hop headers and any X-Mesh-* header an
// upstream tried to set, so the mesh's own stay truthful.
func CleanResponseHeader(h http.Header) {
	removeHopByHop(h)
	for k := range h {
		if hasPrefixFold(k, MeshHeaderPrefix) {
			delete(h, k)
		}
	}
}

func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
