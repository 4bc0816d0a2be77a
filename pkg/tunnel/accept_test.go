package tunnel

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// slowTunnel delays an egress's streams: acceptDelay before the stream
// reaches the server (so its headers, its acceptance, leave that much
// later), headDelay between reading the request head and handing it on.
type slowTunnel struct {
	tunnelv1.UnimplementedTunnelServer
	s                      *Server
	acceptDelay, headDelay time.Duration
}

func (t *slowTunnel) Exchange(stream tunnelv1.Tunnel_ExchangeServer) error {
	time.Sleep(t.acceptDelay)
	return t.s.Exchange(&slowHead{Tunnel_ExchangeServer: stream, delay: t.headDelay})
}

type slowHead struct {
	tunnelv1.Tunnel_ExchangeServer
	delay time.Duration
	read  bool
}

func (s *slowHead) Recv() (*tunnelv1.Frame, error) {
	f, err := s.Tunnel_ExchangeServer.Recv()
	if !s.read {
		s.read = true
		time.Sleep(s.delay)
	}
	return f, err
}

// startSlowEgress serves a counting handler behind slowTunnel over an
// in-memory link, in a synctest bubble, and dials it with cfg.
func startSlowEgress(t *testing.T, st *slowTunnel, cfg DialConfig) (*Conn, *atomic.Int64) {
	calls := new(atomic.Int64)
	st.s = NewServer(ServerConfig{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	})})
	link := newPipeNet(t)
	g := grpc.NewServer()
	tunnelv1.RegisterTunnelServer(g, st)
	serve(t, g, link)
	cfg.dialOptions = []grpc.DialOption{grpc.WithContextDialer(link.Dial)}
	return dialEgress(t, "pipe", cfg), calls
}

// An exchange the egress has not accepted within the accept timeout is
// cancelled and reported as not sent (another egress may take it), and the
// connection is ejected; unless no other egress could take it: then it
// waits for the acceptance, as it would without a deadline.
func TestAcceptTimeout(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration
		acceptDelay time.Duration
		elsewhere   func() bool
		unkept      bool // a body that could not be sent again
		moved       bool // the round trip failed with a NotSentError
	}{
		{"accepted in time", time.Second, 100 * time.Millisecond, nil, false, false},
		{"late, moved", time.Second, 3 * time.Second, nil, false, true},
		{"late, another egress is usable", time.Second, 3 * time.Second, func() bool { return true }, false, true},
		{"late, no other egress: waits", time.Second, 3 * time.Second, func() bool { return false }, false, false},
		{"late, body not kept: waits", time.Second, 3 * time.Second, nil, true, false},
		{"no deadline", 0, 3 * time.Second, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, calls := startSlowEgress(t, &slowTunnel{acceptDelay: tt.acceptDelay}, DialConfig{AcceptTimeout: tt.timeout})
				c.elsewhere = tt.elsewhere
				req := newRequest(t, context.Background(), "POST", "llmesh://p/v1/chat", strings.NewReader("{}"))
				if tt.unkept {
					req.GetBody = nil
				}
				resp, err := c.RoundTrip(req)
				if !tt.moved {
					if err != nil {
						t.Fatalf("round trip: %v", err)
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || string(b) != "ok" || calls.Load() != 1 {
						t.Fatalf("body %q, %v, provider calls %d; want ok and one call", b, err, calls.Load())
					}
					return
				}
				var ns *NotSentError
				if !errors.As(err, &ns) || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("round trip: %v; want a NotSentError for an unavailable egress", err)
				}
				if c.Usable() {
					t.Error("the connection of an egress that did not accept in time is still picked")
				}
				time.Sleep(2 * tt.acceptDelay) // the egress wakes up to a cancelled stream
				synctest.Wait()
				if n := calls.Load(); n != 0 {
					t.Errorf("the provider was called %d times for an exchange the ingress gave up on", n)
				}
			})
		})
	}
}

// The egress checks the stream's context right before calling the
// provider: an exchange the ingress gave up on after the egress accepted
// it, but before the egress got to the call, is never sent.
func TestEgressSkipsCancelledExchange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, calls := startSlowEgress(t, &slowTunnel{headDelay: 2 * time.Second}, DialConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		req := newRequest(t, ctx, "POST", "llmesh://p/v1/chat", nil)
		if _, err := c.RoundTrip(req); !errors.Is(err, context.Canceled) {
			t.Fatalf("round trip: %v; want the client's cancellation", err)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 0 {
			t.Errorf("the provider was called %d times for a cancelled exchange", n)
		}
	})
}
