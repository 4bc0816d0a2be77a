package tunnel

import (
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"unsafe"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// FrameSize is the largest body chunk sent in one frame: small enough for
// gRPC's default 4 MiB message cap and for smooth interleaving of streams on
// one connection, large enough that bulk uploads are not dominated by
// per-message cost.
const FrameSize = 32 << 10

// WholeBody is the largest body of known length that travels in its head's
// frame (see RequestHead.end and ResponseHead.end in the proto): most chat
// requests and non-streamed answers fit.
const WholeBody = 16 << 10

// Format is the wire format this side writes and the only one it reads
// (RequestHead.format, ResponseHead.format; see proto/llmesh/tunnel/v1/tunnel.proto).
const Format = 1

// Scheme is the URL scheme of requests meant for the tunnel:
// llmesh://{provider}/{path}?{query}. The host names a configured provider,
// not a network address: the egress resolves it from its own configuration.
const Scheme = "llmesh"

// bufPool holds read buffers for request bodies. A buffer is only read
// into: what is sent is a copy (see chunkFrame).
var bufPool = sync.Pool{New: func() any { b := make([]byte, FrameSize); return &b }}

// Frames are sent once and never touched again: grpc-go may read a message
// after SendMsg returns (stats handlers, tracing), so neither a frame nor
// the bytes it points at may be reused.

func chunkFrame(p []byte) *tunnelv1.Frame {
	// One allocation for the frame and its oneof wrapper.
	f := &struct {
		frame tunnelv1.Frame
		body  tunnelv1.Frame_Body
	}{}
	f.body.Body = p
	f.frame.Kind = &f.body
	return &f.frame
}

func requestFrame(h *tunnelv1.RequestHead) *tunnelv1.Frame {
	return &tunnelv1.Frame{Kind: &tunnelv1.Frame_Request{Request: h}}
}

// endInHeadKey is the stream header by which an egress says it reads a
// whole request in its head (RequestHead.end).
const endInHeadKey = "llmesh-end-in-head"

func finalFrame(trailers []*tunnelv1.Header) *tunnelv1.Frame {
	return &tunnelv1.Frame{Kind: &tunnelv1.Frame_End{End: &tunnelv1.End{Trailers: trailers}}}
}

// encodeHeader makes three allocations whatever the number of headers: the
// messages, their values and the list. Names under http.TrailerPrefix (a
// handler's way to declare trailers late) are not headers: they are skipped.
func encodeHeader(h http.Header) []*tunnelv1.Header {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	msgs := make([]tunnelv1.Header, len(h))
	values := make([][]byte, n)
	out := make([]*tunnelv1.Header, 0, len(h))
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		m := &msgs[len(out)]
		m.Name = k
		m.Values = values[:len(vs):len(vs)]
		values = values[len(vs):]
		for i, v := range vs {
			m.Values[i] = bytesOf(v)
		}
		out = append(out, m)
	}
	return out
}

// decodeHeader makes two allocations and one per distinct name: the map,
// the values of every name together, and the names.
func decodeHeader(hs []*tunnelv1.Header) http.Header {
	n := 0
	for _, kv := range hs {
		n += len(kv.GetValues())
	}
	h := make(http.Header, len(hs))
	values := make([]string, n)
	for _, kv := range hs {
		if len(kv.GetValues()) == 0 {
			continue
		}
		vs := values[:len(kv.Values):len(kv.Values)]
		values = values[len(kv.Values):]
		for i, v := range kv.Values {
			vs[i] = stringOf(v)
		}
		// As http.Header.Add: canonical names, repeated names together
		// (appending to a slice at its capacity copies it).
		k := textproto.CanonicalMIMEHeaderKey(kv.Name)
		if old, ok := h[k]; ok {
			vs = append(old, vs...)
		}
		h[k] = vs
	}
	return h
}

// bytesOf returns s's bytes without a copy, for a message that is only
// marshalled: nothing ever writes to them.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// stringOf returns b as a string without a copy. b must be a received
// message's own bytes (proto.Unmarshal copies bytes fields out of the wire
// buffer), never written to afterwards.
func stringOf(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
