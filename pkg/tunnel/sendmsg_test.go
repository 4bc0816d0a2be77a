package tunnel

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// sentBodies is a gRPC stats handler, as a tracing library would install:
// it keeps every body frame sent, as grpc-go hands it over on OutPayload,
// with a copy of its bytes at that moment.
type sentBodies struct {
	mu     sync.Mutex
	frames []*tunnelv1.Frame
	copies [][]byte
}

func (s *sentBodies) HandleRPC(_ context.Context, st stats.RPCStats) {
	out, ok := st.(*stats.OutPayload)
	if !ok {
		return
	}
	if f, ok := out.Payload.(*tunnelv1.Frame); ok && f.GetBody() != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.frames = append(s.frames, f)
		s.copies = append(s.copies, bytes.Clone(f.GetBody()))
	}
}

func (s *sentBodies) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (s *sentBodies) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (s *sentBodies) HandleConn(context.Context, stats.ConnStats)                       {}

// check fails t unless every kept frame still holds the bytes it was sent
// with, and together they are want.
func (s *sentBodies) check(t *testing.T, what string, want []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var now []byte
	for i, f := range s.frames {
		if !bytes.Equal(f.GetBody(), s.copies[i]) {
			t.Errorf("%s: frame %d of %d changed after Send", what, i, len(s.frames))
		}
		now = append(now, f.GetBody()...)
	}
	if !bytes.Equal(now, want) {
		t.Errorf("%s: the sent frames now hold %d bytes, not the %d sent", what, len(now), len(want))
	}
}

// grpc-go may read a message after SendMsg returns ("It is not safe to
// modify the message after calling SendMsg"): neither side may reuse a
// frame or the buffer its body points at.
func TestSentFramesAreNeverModified(t *testing.T) {
	checkLeaks(t)
	rng := rand.NewChaCha8([32]byte{7})
	upload, download := make([]byte, 200<<10), make([]byte, 200<<10)
	rng.Read(upload)
	rng.Read(download)

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		// One buffer, overwritten between writes, as the proxy's pooled
		// copy buffer is.
		buf := make([]byte, 4096)
		for p := download; len(p) > 0; {
			n := copy(buf, p)
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
			p = p[n:]
			clear(buf)
		}
	})
	var egressSent, ingressSent sentBodies
	_, addr := startEgress(t, ServerConfig{Handler: h, serverOptions: []grpc.ServerOption{grpc.StatsHandler(&egressSent)}})
	c := dialEgress(t, addr, DialConfig{dialOptions: []grpc.DialOption{grpc.WithStatsHandler(&ingressSent)}})

	resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodPost, "llmesh://p/x", bytes.NewReader(upload)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(b, download) {
		t.Fatalf("download: %d bytes, %v", len(b), err)
	}
	ingressSent.check(t, "ingress", upload)
	egressSent.check(t, "egress", download)
}
