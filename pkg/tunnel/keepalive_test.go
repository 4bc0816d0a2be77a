package tunnel

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
)

// pipeNet is an in-memory network for tests in a synctest bubble: a
// listener whose connections are net.Pipe pairs joined by a relay. A
// goroutine blocked on a pipe is durably blocked, so the bubble's clock
// runs keepalive timers without waiting in real time. Once frozen, the
// relay stops moving bytes in both directions but keeps every pipe open,
// which is what a lost host or a partition looks like to both peers:
// silence, no FIN, no RST.
type pipeNet struct {
	accept chan net.Conn
	done   chan struct{}
	frozen chan struct{}
	stop   sync.Once
	freeze sync.Once
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newPipeNet(tb testing.TB) *pipeNet {
	n := &pipeNet{accept: make(chan net.Conn), done: make(chan struct{}), frozen: make(chan struct{})}
	tb.Cleanup(func() {
		n.Close()
		n.mu.Lock()
		for _, c := range n.conns {
			c.Close()
		}
		n.mu.Unlock()
		n.wg.Wait()
	})
	return n
}

// Accept, Close and Addr make the pipeNet the server's listener.
func (n *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-n.accept:
		return c, nil
	case <-n.done:
		return nil, net.ErrClosed
	}
}

func (n *pipeNet) Close() error {
	n.stop.Do(func() { close(n.done) })
	return nil
}

func (n *pipeNet) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// Dial connects a client to the listener through the relay.
func (n *pipeNet) Dial(ctx context.Context, _ string) (net.Conn, error) {
	client, in := net.Pipe()
	out, server := net.Pipe()
	select {
	case n.accept <- server:
	case <-n.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	n.mu.Lock()
	n.conns = append(n.conns, client, in, out, server)
	n.mu.Unlock()
	n.wg.Add(2)
	go n.pipe(out, in)
	go n.pipe(in, out)
	return client, nil
}

// Freeze stops all traffic through the relay for good.
func (n *pipeNet) Freeze() { n.freeze.Do(func() { close(n.frozen) }) }

// pipe copies src to dst until frozen; then it reads and drops what src
// sends, as a network that lost the packets would, until cleanup.
func (n *pipeNet) pipe(dst, src net.Conn) {
	defer n.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		nr, err := src.Read(buf)
		if err != nil {
			return
		}
		select {
		case <-n.frozen:
			continue
		default:
		}
		if _, err := dst.Write(buf[:nr]); err != nil {
			return
		}
	}
}

// Keepalive pings keep a quiet stream alive, and they are how both ends
// notice a peer that went silent without closing its socket: the egress
// cancels the provider call (server pings every second here), the ingress
// fails the client's response instead of waiting forever (client pings
// every 10 s, grpc-go's floor, and gives up 1 s later). In a synctest
// bubble over in-memory pipes, the seconds pass on the bubble's clock.
func TestKeepaliveDetectsSilentPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quiet := 3 * time.Second // three server pings, no data
		handlerEnded := make(chan error, 1)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("thinking"))
			http.NewResponseController(w).Flush()
			if r.URL.Path == "/p/quiet" {
				time.Sleep(quiet)
				w.Write([]byte(" done"))
				return
			}
			<-r.Context().Done()
			handlerEnded <- r.Context().Err()
		})
		link := newPipeNet(t)
		serve(t, NewServer(ServerConfig{Handler: h, Keepalive: Keepalive{Interval: time.Second, Timeout: time.Second}}).GRPCServer(), link)
		c := dialEgress(t, "pipe", DialConfig{
			Keepalive:   Keepalive{Interval: 10 * time.Second, Timeout: time.Second},
			dialOptions: []grpc.DialOption{grpc.WithContextDialer(link.Dial)},
		})

		b, err := io.ReadAll(get(t, c, "llmesh://p/quiet").Body)
		if err != nil || string(b) != "thinking done" {
			t.Fatalf("quiet stream: %q, %v; want it whole", b, err)
		}

		resp := get(t, c, "llmesh://p/hang")
		first := make([]byte, len("thinking"))
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		readErr := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			readErr <- err
		}()
		link.Freeze()
		frozenAt := time.Now()

		if err := recv(t, handlerEnded, 10*time.Second, "the egress to cancel the handler of a silent ingress"); err == nil {
			t.Fatal("handler context ended without an error")
		}
		t.Logf("egress noticed the silent ingress after %v", time.Since(frozenAt))
		if err := recv(t, readErr, 30*time.Second, "the ingress to fail the response of a silent egress"); err == nil {
			t.Fatal("response ended cleanly; a cut stream must not look complete")
		}
		t.Logf("ingress noticed the silent egress after %v", time.Since(frozenAt))
	})
}
