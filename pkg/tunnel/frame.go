package tunnel

import (
	"net/http"
	"sync"

	"github.com/llmesh/llmesh/proto/tunnelpb"
)

// FrameSize is the largest body chunk sent in one frame: small enough for
// gRPC's default 4 MiB message cap and for smooth interleaving of streams on
// one connection, large enough that bulk uploads are not dominated by
// per-message cost.
const FrameSize = 32 << 10

// Scheme is the URL scheme of requests meant for the tunnel:
// llmesh://{provider}/{path}?{query}. The host names a configured provider,
// not a network address: the egress resolves it from its own configuration.
const Scheme = "llmesh"

// tokenKey is the gRPC metadata key that carries the shared tunnel token.
const tokenKey = "llmesh-token"

var bufPool = sync.Pool{New: func() any { b := make([]byte, FrameSize); return &b }}

func encodeHeader(h http.Header) []*tunnelpb.Header {
	out := make([]*tunnelpb.Header, 0, len(h))
	for k, vs := range h {
		out = append(out, &tunnelpb.Header{Name: k, Values: vs})
	}
	return out
}

func decodeHeader(hs []*tunnelpb.Header) http.Header {
	h := make(http.Header, len(hs))
	for _, kv := range hs {
		if kv == nil {
			continue
		}
		for _, v := range kv.Values {
			h.Add(kv.Name, v)
		}
	}
	return h
}
