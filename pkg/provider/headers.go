package provider

import (
	"bytes"
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

// clientIdentifying, by normalised name (see normName), name the client or
// the path it came by, or tell a server behind the provider's edge to treat
// the request as another URL, host or method. A provider must not learn who
// is behind the mesh or where they are, nor be redirected by a client.
var clientIdentifying = map[string]bool{
	"forwarded": true, "forwarded-for": true, "via": true, "x-forwarded": true,
	"x-real-ip": true, "x-client-ip": true, "x-cluster-client-ip": true, "client-ip": true,
	"x-originating-ip": true, "x-remote-ip": true, "x-remote-addr": true, "x-original-forwarded-for": true,
	"true-client-ip": true, "fastly-client-ip": true, "fly-client-ip": true, "x-appengine-user-ip": true,
	"cf-connecting-ip": true, "cf-connecting-ipv6": true, "cf-ipcountry": true, "cf-ray": true,
	"cf-visitor": true, "cf-worker": true, "cdn-loop": true,
	// Rewrites honoured by some frameworks (IIS, Symfony, Rails, Express).
	"x-original-url": true, "x-rewrite-url": true, "x-original-host": true, "x-host": true,
	"x-http-method-override": true, "x-http-method": true, "x-method-override": true,
}

// Prefixes of removed headers, by normalised name.
const (
	forwardedPrefix = "x-forwarded-"
	meshPrefix      = "x-mesh-"
)

// MeshHeaderPrefix marks headers llmesh itself reads or writes; clients may
// not smuggle them to a provider.
const MeshHeaderPrefix = "X-Mesh-"

// CleanRequestHeader removes, in place, every header that must not reach a
// provider: hop-by-hop headers and those named by Connection, headers that
// identify the client or rewrite the request, and llmesh's own control
// headers. A name counts whatever its case and with '_' read as '-'
// (X_Forwarded_For, X-Real_IP): CGI-style servers map both to the same
// variable. Everything else (the SDKs' authorization, anthropic-*, openai-*,
// x-stainless-*, user-agent, accept, accept-encoding, idempotency-key and
// custom headers) passes.
func CleanRequestHeader(h http.Header) {
	removeHopByHop(h)
	for k := range h {
		var buf [maxNormName]byte
		n := normName(buf[:0], k)
		if removedNames[string(n)] ||
			bytes.HasPrefix(n, []byte(forwardedPrefix)) || bytes.HasPrefix(n, []byte(meshPrefix)) {
			delete(h, k)
		}
	}
}

// CleanResponseHeader removes hop-by-hop headers and any X-Mesh-* header an
// upstream tried to set, so the mesh's own stay truthful.
func CleanResponseHeader(h http.Header) {
	removeHopByHop(h)
	for k := range h {
		var buf [maxNormName]byte
		if bytes.HasPrefix(normName(buf[:0], k), []byte(meshPrefix)) {
			delete(h, k)
		}
	}
}

// maxNormName is longer than every name in clientIdentifying and hopByHop
// and than both prefixes: a longer header name is normalised only that far,
// which matches no listed name and is enough to compare its prefix.
const maxNormName = 32

// removedNames are clientIdentifying and hopByHop by normalised name.
var removedNames = func() map[string]bool {
	m := make(map[string]bool, len(clientIdentifying)+len(hopByHop))
	for k := range clientIdentifying {
		m[k] = true
	}
	for _, k := range hopByHop {
		m[strings.ToLower(k)] = true
	}
	return m
}()

// normName appends to dst the first maxNormName bytes of header name k as
// servers that fold case and read '_' as '-' see it. With dst on the stack
// it does not allocate.
func normName(dst []byte, k string) []byte {
	k = k[:min(len(k), maxNormName)]
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		dst = append(dst, c)
	}
	return dst
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
