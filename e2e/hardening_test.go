package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// TestPlaintextIngressSaysTunnelInsecure: an ingress with a tunnel token but
// neither tunnel.tls nor tunnel.insecure, meshed with mutual-TLS egress
// nodes (so none of them is usable from it), answers 502 tunnel_insecure,
// not 503 no_egress: the fix is in its own config, not in gossip.
func TestPlaintextIngressSaysTunnelInsecure(t *testing.T) {
	m := newMesh(t)
	ca := newMeshCA(t)
	m.start(nodeSpec{role: role.Egress, name: "pi-wnam", loc: "US", hint: "wnam", edit: ca.tls("egress", "wnam", "pi-wnam")})
	in := m.start(nodeSpec{role: role.Ingress, name: "pi-hk", loc: "HK", providerURL: closedURL(t),
		rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}},
		edit:  func(c *config.Config) { c.Tunnel.Insecure = false }})
	m.waitMembers(in, "pi-wnam")
	before := m.provider.Stats().Requests
	// The ingress's plaintext connection to the egress fails its handshake
	// within moments; the answer must not change when it does.
	for i := range 40 {
		resp, body := get(t, baseURL(in)+"/openai/v1/models")
		if resp.StatusCode != 502 || resp.Header.Get("X-Mesh-Error") != "tunnel_insecure" {
			t.Fatalf("request %d: %d %s: %s", i, resp.StatusCode, resp.Header.Get("X-Mesh-Error"), body)
		}
		time.Sleep(25 * time.Millisecond) // spread over a second: before and after the failed handshake
	}
	if got := m.provider.Stats().Requests - before; got != 0 {
		t.Fatalf("the provider saw %d requests", got)
	}
}

// TestOptionsAsterisk: "OPTIONS *" is refused with 400 like any other
// request target that names no provider path, on both roles' listeners.
func TestOptionsAsterisk(t *testing.T) {
	m := newMesh(t)
	eg := m.start(nodeSpec{role: role.Egress, name: "oa-wnam", loc: "US", hint: "wnam"})
	in := m.start(nodeSpec{role: role.Ingress, name: "oa-hk", loc: "HK"})
	for _, n := range []*node.Node{in, eg} {
		if status := rawRequest(t, n.HTTPAddr(), "OPTIONS * HTTP/1.1", "Host: x\r\n"); status/100 != 4 {
			t.Errorf("%s: OPTIONS * answered %d, want a 4xx", n.Name(), status)
		}
	}
	if status := rawRequest(t, in.HTTPAddr(), "OPTIONS * HTTP/1.1", "Host: x\r\n"); status != 400 {
		t.Errorf("ingress: OPTIONS * answered %d, want 400", status)
	}
}

// TestShutdownKeepsTheDrainDeadline: a pool stopped all at once (every node
// SIGTERMed at the same instant) exits within its drain deadline, although
// no peer is left to acknowledge its departure.
func TestShutdownKeepsTheDrainDeadline(t *testing.T) {
	m := newMesh(t)
	var names []string
	for i := range 8 {
		names = append(names, fmt.Sprintf("sd-%d", i))
		m.start(nodeSpec{role: role.Egress, name: names[i], loc: "US", hint: "wnam", profileGossip: true,
			edit: func(c *config.Config) { c.Gossip.Profile = "lan" }})
	}
	m.mu.Lock()
	nodes := make([]*node.Node, 0, len(names))
	for _, name := range names {
		nodes = append(nodes, m.nodes[name])
	}
	m.mu.Unlock()
	m.waitMembers(nodes[0], names[1:]...)
	var wg sync.WaitGroup
	took := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			n.Shutdown(ctx)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	if slowest := slices.Max(took); slowest > 3*time.Second {
		t.Fatalf("the slowest node took %s to shut down with a drain deadline of 1s: %v", slowest, took)
	}
}
