package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/role"
)

// TestSilentEgressServedElsewhere: one of two egress nodes goes silent
// (its tunnel connection stops moving bytes, nothing is closed: a host
// lost, a link cut). A request sent to it is not accepted within
// tunnel.accept_timeout, so it is cancelled there and served by the other
// egress, long before the keepalive would end the wait; the provider sees
// each request exactly once.
func TestSilentEgressServedElsewhere(t *testing.T) {
	m := newMesh(t)
	m.start(nodeSpec{role: role.Egress, name: "sc-1", loc: "US", hint: "wnam"})
	cut := newRelay(t)
	m.start(nodeSpec{role: role.Egress, name: "sc-2", loc: "US", hint: "wnam", edit: func(c *config.Config) {
		c.Tunnel.Listen = cut.target
		c.Tunnel.Advertise = cut.addr()
	}})
	hk := m.start(nodeSpec{role: role.Ingress, name: "sc-hk", loc: "HK", providerURL: closedURL(t),
		rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}})
	m.waitMembers(hk, "sc-1", "sc-2")
	servedBy(t, m, hk, []string{"sc-1", "sc-2"})

	cut.freeze()
	// Until one of them was sent to the silent egress first: each request
	// then has a one-in-two chance of it.
	sent := 0
	for !strings.Contains(m.logs.String(), `retrying elsewhere: the egress did not take the request`) {
		if sent == 30 {
			t.Fatal("30 requests and none was sent to the silent egress first")
		}
		sent++
		id := fmt.Sprintf("sc-%d", sent)
		// Far below the keepalive's 20 s, which ends the wait without the deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "POST", baseURL(hk)+"/openai/v1/chat/completions",
			strings.NewReader(`{"model":"fake-gpt","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("request %s: %v", id, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		cancel()
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "sc-1" {
			t.Fatalf("request %s: status %d from %q, want 200 from sc-1", id, resp.StatusCode, resp.Header.Get("X-Mesh-Egress"))
		}
	}
	calls := map[string]int{}
	for _, r := range m.provider.Requests() {
		if id := r.Header.Get("X-Test-Id"); id != "" {
			calls[id]++
		}
	}
	for i := 1; i <= sent; i++ {
		if id := fmt.Sprintf("sc-%d", i); calls[id] != 1 {
			t.Errorf("the provider saw request %s %d times, want once", id, calls[id])
		}
	}
}

// relay forwards TCP connections to target until frozen: then it stops
// moving bytes both ways but closes nothing, as a lost host looks to its
// peers (silence: no FIN, no RST).
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen chan struct{}
	conns  []net.Conn
	wg     sync.WaitGroup
}

// newRelay listens on a loopback port and forwards to target, another
// loopback port reserved for the node behind it.
func newRelay(t *testing.T) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: strings.TrimPrefix(closedURL(t), "http://"), frozen: make(chan struct{})}
	r.wg.Go(r.serve)
	t.Cleanup(func() {
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

func (r *relay) addr() string { return r.ln.Addr().String() }

// freeze stops every byte, in connections open now and later.
func (r *relay) freeze() { close(r.frozen) }

func (r *relay) serve() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, in, out)
		r.mu.Unlock()
		r.wg.Go(func() { r.pipe(out, in) })
		r.wg.Go(func() { r.pipe(in, out) })
	}
}

// pipe copies src to dst; once frozen, it reads and drops.
func (r *relay) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-r.frozen:
			n = 0
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
