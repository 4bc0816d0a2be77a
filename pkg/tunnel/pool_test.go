package tunnel

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

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

// An egress that restarted gossips a new Start: the pool dials the new
// process at once and retires the connection to the old one, which may
// still look ready (a restart faster than any failure could show).
func TestPoolSyncRedialsRestartedEgress(t *testing.T) {
	checkLeaks(t)
	_, addr := startEgress(t, ServerConfig{Handler: http.NotFoundHandler()})
	p := NewPool(DialConfig{})
	defer p.Close()
	p.Sync([]Endpoint{{Name: "a", Addr: addr, Start: "one"}})
	old, _ := p.Get("a")
	wait.Until(t, 5*time.Second, "the connection to be ready", old.ready)

	p.Sync([]Endpoint{{Name: "a", Addr: addr, Start: "one"}})
	if c, _ := p.Get("a"); c != old {
		t.Fatal("the same process redialled")
	}
	p.Sync([]Endpoint{{Name: "a", Addr: addr, Start: "two"}})
	c, _ := p.Get("a")
	if c == old {
		t.Fatal("the connection to the old process kept after a restart")
	}
	if got := old.cc.GetState(); got != connectivity.Shutdown {
		t.Errorf("old connection %s, want it closed (no exchange in flight)", got)
	}
	wait.Until(t, 5*time.Second, "the new connection to be ready", c.ready)
}

// A connection whose egress went away and came back at the same address
// is idle in grpc-go (it reconnects on the next stream only): picking
// among its hint's connections reconnects it, though a ready one wins
// each choice. Otherwise the pool would quietly shrink to the connections
// that never dropped.
func TestPoolPickReconnectsIdle(t *testing.T) {
	checkLeaks(t)
	_, steady := startEgress(t, ServerConfig{Handler: http.NotFoundHandler()})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := NewServer(ServerConfig{Handler: http.NotFoundHandler()}).GRPCServer()
	go g.Serve(lis)
	back := lis.Addr().String()

	p := NewPool(DialConfig{})
	defer p.Close()
	p.Sync([]Endpoint{{Name: "steady", Addr: steady, Hint: "wnam"}, {Name: "back", Addr: back, Hint: "wnam"}})
	c, _ := p.Get("back")
	wait.Until(t, 5*time.Second, "the connection to be ready", c.ready)
	p.Pick("wnam", nil, rand.IntN) // the hint's first pick connects its lazy connections

	g.Stop() // the egress goes, and comes back at the same address
	wait.Until(t, 5*time.Second, "the connection to drop", func() bool { return !c.ready() })
	if lis, err = net.Listen("tcp", back); err != nil {
		t.Skipf("cannot listen on %s again: %v", back, err)
	}
	serve(t, NewServer(ServerConfig{Handler: http.NotFoundHandler()}).GRPCServer(), lis)
	wait.Until(t, 5*time.Second, "picks to reconnect the connection", func() bool {
		p.Pick("wnam", nil, rand.IntN)
		return c.ready()
	})
}

// idleConn is a connection that never dialled: usable, not ready.
func idleConn(tb testing.TB, name string) *Conn {
	tb.Helper()
	cc, err := grpc.NewClient("passthrough:///127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return &Conn{Name: name, cc: cc}
}

// indexed is a pool whose index holds conns under hint.
func indexed(hint string, conns ...*Conn) *Pool {
	p := NewPool(DialConfig{})
	h := &hintConns{conns: conns}
	h.warm.Store(true) // leave idle connections idle
	p.byHint.Store(&map[string]*hintConns{hint: h})
	return p
}

func TestPoolPick(t *testing.T) {
	checkLeaks(t)
	a, b, c := idleConn(t, "a"), idleConn(t, "b"), idleConn(t, "c")
	p := indexed("wnam", a, b, c)
	if _, ok := p.Pick("weur", nil, rand.IntN); ok {
		t.Error("picked an egress of a hint nobody serves")
	}
	for range 50 {
		got, ok := p.Pick("wnam", []string{"a", "c"}, rand.IntN)
		if !ok || got != b {
			t.Fatalf("with a and c excluded: %v, %v", got, ok)
		}
	}
	if _, ok := p.Pick("wnam", []string{"a", "b", "c"}, rand.IntN); ok {
		t.Error("picked with every egress excluded")
	}

	// Fewer in flight wins; an ejected connection is never picked.
	a.inflight.Store(5)
	c.ejectedUntil.Store(time.Now().Add(time.Hour).UnixNano())
	for range 50 {
		if got, _ := p.Pick("wnam", nil, rand.IntN); got != b {
			t.Fatalf("picked %s over the idle b (a busy, c ejected)", got.Name)
		}
	}

	// A ready connection wins over one still connecting, even if busier.
	_, addr := startEgress(t, ServerConfig{Handler: http.NotFoundHandler()})
	ready := dialEgress(t, addr, DialConfig{})
	wait.Until(t, 5*time.Second, "a ready connection", ready.ready)
	ready.inflight.Store(3)
	p = indexed("wnam", ready, idleConn(t, "connecting"))
	for range 50 {
		if got, _ := p.Pick("wnam", nil, rand.IntN); got != ready {
			t.Fatalf("picked %s over the ready connection", got.Name)
		}
	}
}

// TestPoolSyncIndexesNotDraining: a draining egress keeps its connection
// (its streams finish) but is picked for no new request.
func TestPoolSyncIndexesNotDraining(t *testing.T) {
	checkLeaks(t)
	_, addr := startEgress(t, ServerConfig{Handler: http.NotFoundHandler()})
	p := NewPool(DialConfig{})
	defer p.Close()
	p.Sync([]Endpoint{{Name: "a", Addr: addr, Hint: "wnam"}})
	a, _ := p.Get("a")
	if got, ok := p.Pick("wnam", nil, rand.IntN); !ok || got != a {
		t.Fatalf("before draining: %v, %v", got, ok)
	}
	p.Sync([]Endpoint{{Name: "a", Addr: addr, Hint: "wnam", Draining: true}})
	if got, _ := p.Get("a"); got != a {
		t.Fatal("draining redialled the connection")
	}
	if got, ok := p.Pick("wnam", nil, rand.IntN); ok {
		t.Fatalf("picked the draining egress %s", got.Name)
	}
}

// BenchmarkPoolPick: routing cost per request with 3, 60, 100 and 1000 live
// egress nodes of the wanted hint, and as many of other hints.
func BenchmarkPoolPick(b *testing.B) {
	for _, n := range []int{3, 60, 100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			byHint := map[string]*hintConns{"wnam": {}, "weur": {}}
			byHint["wnam"].warm.Store(true) // no dialling in the loop
			for i := range n {
				byHint["wnam"].conns = append(byHint["wnam"].conns, idleConn(b, "w"+strconv.Itoa(i)))
				byHint["weur"].conns = append(byHint["weur"].conns, idleConn(b, "e"+strconv.Itoa(i)))
			}
			p := NewPool(DialConfig{})
			p.byHint.Store(&byHint)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := p.Pick("wnam", nil, rand.IntN); !ok {
					b.Fatal("no pick")
				}
			}
		})
	}
}

// TestPoolLazyEndpoints: an endpoint of a hint this ingress routes to only
// by fallback is not connected until its hint is first picked.
func TestPoolLazyEndpoints(t *testing.T) {
	checkLeaks(t)
	_, addr := startEgress(t, ServerConfig{Handler: http.NotFoundHandler()})
	p := NewPool(DialConfig{})
	defer p.Close()
	p.Sync([]Endpoint{{Name: "w", Addr: addr, Hint: "wnam"}, {Name: "e", Addr: addr, Hint: "weur", Lazy: true}})
	w, _ := p.Get("w")
	e, _ := p.Get("e")
	wait.Until(t, 5*time.Second, "the eager connection", w.ready)
	if s := e.cc.GetState(); s != connectivity.Idle {
		t.Fatalf("the lazy connection is %s before any pick", s)
	}
	if got, ok := p.Pick("weur", nil, rand.IntN); !ok || got != e {
		t.Fatalf("pick of weur: %v, %v", got, ok)
	}
	wait.Until(t, 5*time.Second, "the lazy connection once picked", e.ready)
}
