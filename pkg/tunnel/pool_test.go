package tunnel

import (
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/llmesh/llmesh/internal/wait"
)

// names lists the pool's connections as name@addr, sorted.
func names(p *Pool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, c := range p.conns {
		out = append(out, c.Name+"@"+c.Addr)
	}
	slices.Sort(out)
	return out
}

func TestPoolSync(t *testing.T) {
	checkLeaks(t)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.URL.Path)) })
	_, addrA := startEgress(t, ServerConfig{Handler: h})
	_, addrB := startEgress(t, ServerConfig{Handler: h})

	p := NewPool(DialConfig{})
	defer p.Close()

	p.Sync([]Endpoint{{Name: "a", Addr: addrA}, {Name: "b", Addr: addrB}, {Name: "no-tunnel", Addr: ""}})
	if got, want := names(p), []string{"a@" + addrA, "b@" + addrB}; !slices.Equal(got, want) {
		t.Fatalf("conns = %v, want %v", got, want)
	}
	a1, _ := p.Get("a")

	// Syncing the same set keeps the same connections.
	p.Sync([]Endpoint{{Name: "a", Addr: addrA}, {Name: "b", Addr: addrB}})
	if a, _ := p.Get("a"); a != a1 {
		t.Error("an unchanged endpoint was redialled")
	}

	// "a" moves to B's address: redialled; the idle old one closes at once.
	p.Sync([]Endpoint{{Name: "a", Addr: addrB}, {Name: "b", Addr: addrB}})
	a2, ok := p.Get("a")
	if !ok || a2 == a1 || a2.Addr != addrB {
		t.Fatalf("after the address change: %v, %v", a2, ok)
	}
	if a1.Usable() {
		t.Error("the replaced connection still reports usable")
	}
	wait.Until(t, 2*time.Second, "the replaced idle connection to close", func() bool {
		return a1.cc.GetState() == connectivity.Shutdown
	})
	for _, name := range []string{"a", "b"} {
		c, _ := p.Get(name)
		resp, err := c.RoundTrip(newRequest(t, t.Context(), http.MethodGet, "llmesh://prov/x", nil))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "/prov/x" {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}

	p.Sync(nil)
	if got := names(p); len(got) != 0 {
		t.Errorf("after Sync(nil): %v", got)
	}
	if _, ok := p.Get("a"); ok {
		t.Error("Get found a removed egress")
	}
}

// An egress that leaves the mesh keeps serving its live exchanges: the
// connection closes only when the last one ends.
func TestPoolRetireWaitsForInflight(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first;"))
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("second"))
	})
	srv, addr := startEgress(t, ServerConfig{Handler: h})

	p := NewPool(DialConfig{})
	defer p.Close()
	p.Sync([]Endpoint{{Name: "e", Addr: addr}})
	c, ok := p.Get("e")
	if !ok {
		t.Fatal("no conn after Sync")
	}
	resp := get(t, c, "llmesh://p/x")
	if _, err := io.ReadFull(resp.Body, make([]byte, len("first;"))); err != nil {
		t.Fatal(err)
	}

	p.Sync(nil)
	if _, ok := p.Get("e"); ok {
		t.Fatal("retired conn still in the pool")
	}
	if c.Usable() {
		t.Error("retired conn reports usable")
	}
	if st := c.cc.GetState(); st == connectivity.Shutdown {
		t.Fatal("retired conn closed while an exchange was in flight")
	}

	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("live exchange after retire: %q, %v", rest, err)
	}
	wait.Until(t, 2*time.Second, "the retired conn to close after its last exchange", func() bool {
		return c.cc.GetState() == connectivity.Shutdown
	})
	wait.Until(t, 2*time.Second, "the egress to see the exchange end", func() bool { return srv.InFlight() == 0 })
}

// TestPoolSyncResetsBackoff: an egress that comes back at the same address
// is reconnected as soon as gossip reports it alive (Sync), not after the
// connection's reconnect backoff, which grows to two minutes.
func TestPoolSyncResetsBackoff(t *testing.T) {
	checkLeaks(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // the egress is down

	// A backoff far longer than the test: only a reset reconnects in time.
	p := NewPool(DialConfig{dialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: backoff.Config{BaseDelay: time.Hour, Multiplier: 1, MaxDelay: time.Hour}, MinConnectTimeout: time.Second,
	})}})
	defer p.Close()
	eps := []Endpoint{{Name: "a", Addr: addr}}
	p.Sync(eps)
	c, _ := p.Get("a")
	wait.Until(t, 5*time.Second, "the connection to fail", func() bool {
		return c.cc.GetState() == connectivity.TransientFailure
	})

	// The egress is back at the same address; gossip says so.
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	serve(t, NewServer(ServerConfig{Handler: http.NotFoundHandler()}).GRPCServer(), lis)
	p.Sync(eps)
	wait.Until(t, 5*time.Second, "the connection to be ready", func() bool {
		return c.cc.GetState() == connectivity.Ready
	})
}
