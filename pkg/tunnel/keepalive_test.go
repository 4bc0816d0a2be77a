package tunnel

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// relay forwards TCP connections to a target until frozen; then it stops
// moving bytes in both directions but keeps every socket open, which is
// what a lost host or a partition looks like to both peers: silence, no
// FIN, no RST.
type relay struct {
	ln     net.Listener
	frozen chan struct{}
	freeze sync.Once
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startRelay(tb testing.TB, target string) *relay {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &relay{ln: ln, frozen: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			r.wg.Add(2)
			go r.pipe(out, in)
			go r.pipe(in, out)
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) Addr() string { return r.ln.Addr().String() }

// Freeze stops all traffic through the relay for good.
func (r *relay) Freeze() { r.freeze.Do(func() { close(r.frozen) }) }

func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-r.frozen:
			return // drop what was read; sockets stay open until cleanup
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Keepalive pings keep a quiet stream alive, and they are how both ends
// notice a peer that went silent without closing its socket: the egress
// cancels the provider call (server pings every second here), the ingress
// fails the client's response instead of waiting forever (client pings
// every 10 s, grpc-go's floor, and gives up 1 s later).
func TestKeepaliveDetectsSilentPeer(t *testing.T) {
	// Parallel: it waits ~12 s. Leaks are still caught, by TestMain's
	// goleak check once every test has ended.
	t.Parallel()
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
	_, addr := startEgress(t, ServerConfig{Handler: h, Keepalive: Keepalive{Interval: time.Second, Timeout: time.Second}})
	link := startRelay(t, addr)
	c := dialEgress(t, link.Addr(), DialConfig{Keepalive: Keepalive{Interval: 10 * time.Second, Timeout: time.Second}})

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
	t.Logf("egress noticed the silent ingress after %v", time.Since(frozenAt).Round(100*time.Millisecond))
	if err := recv(t, readErr, 30*time.Second, "the ingress to fail the response of a silent egress"); err == nil {
		t.Fatal("response ended cleanly; a cut stream must not look complete")
	}
	t.Logf("ingress noticed the silent egress after %v", time.Since(frozenAt).Round(100*time.Millisecond))
}
