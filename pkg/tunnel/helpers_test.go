package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checkLeaks fails t if goroutines outlive it. Registered first, it runs
// after every other cleanup (servers stopped, connections closed).
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// serveGRPC runs g on a fresh loopback listener until the test ends.
func serveGRPC(tb testing.TB, g *grpc.Server) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	serve(tb, g, lis)
	return lis.Addr().String()
}

// serve runs g on lis until the test ends.
func serve(tb testing.TB, g *grpc.Server, lis net.Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Serve(lis)
	}()
	tb.Cleanup(func() {
		g.Stop()
		<-done
	})
}

// startEgress starts a tunnel server on loopback and returns it with its address.
func startEgress(tb testing.TB, cfg ServerConfig) (*Server, string) {
	tb.Helper()
	s := NewServer(cfg)
	return s, serveGRPC(tb, s.GRPCServer())
}

// dialEgress dials the tunnel server at addr as node "egress-1" and closes
// the connection when the test ends.
func dialEgress(tb testing.TB, addr string, cfg DialConfig) *Conn {
	tb.Helper()
	c, err := Dial("egress-1", addr, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// rawClient is a bare generated client, for sending what a Conn never would.
func rawClient(tb testing.TB, addr string) tunnelv1.TunnelClient {
	tb.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return tunnelv1.NewTunnelClient(cc)
}

// rawExchange sends frames, half-closes and returns the first frame the
// server answers with. The stream is drained or cancelled before it returns.
func rawExchange(ctx context.Context, client tunnelv1.TunnelClient, frames ...*tunnelv1.Frame) (*tunnelv1.Frame, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Exchange(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range frames {
		if err := stream.Send(f); err != nil {
			break // the server ended the stream; Recv says why
		}
	}
	stream.CloseSend()
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return first, nil
			}
			return first, err
		}
	}
}

func headFrame(h *tunnelv1.RequestHead) *tunnelv1.Frame {
	return &tunnelv1.Frame{Kind: &tunnelv1.Frame_Request{Request: h}}
}

func bodyFrame(b string) *tunnelv1.Frame {
	return &tunnelv1.Frame{Kind: &tunnelv1.Frame_Body{Body: []byte(b)}}
}

func endFrame() *tunnelv1.Frame {
	return &tunnelv1.Frame{Kind: &tunnelv1.Frame_End{End: &tunnelv1.End{}}}
}

// recv waits for a value on ch for at most d.
func recv[T any](tb testing.TB, ch <-chan T, d time.Duration, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		tb.Fatalf("timed out after %v waiting for %s", d, what)
		panic("unreachable")
	}
}

// newRequest builds a tunnel request; it fails the test on a bad URL.
func newRequest(tb testing.TB, ctx context.Context, method, url string, body io.Reader) *http.Request {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// get round-trips a GET of url on c and fails the test if it does not get
// a response; the body is closed when the test ends, if not before.
func get(t *testing.T, c *Conn, url string) *http.Response {
	t.Helper()
	resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, url, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// closeTracker records whether a request body was closed.
type closeTracker struct {
	io.Reader
	closed chan struct{}
}

func newCloseTracker(r io.Reader) *closeTracker {
	return &closeTracker{Reader: r, closed: make(chan struct{})}
}

func (c *closeTracker) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}
