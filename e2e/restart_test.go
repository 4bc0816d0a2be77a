package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// TestPoolRestartedAtOnce: a whole egress pool stops at the same instant
// (gracefully, or crashing) and starts again at once at the same addresses,
// before the ingress noticed the departure; every restarted egress serves
// requests again within seconds (each new process gossips a new start, so
// the ingress dials it at once).
func TestPoolRestartedAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name string
		stop func(*node.Node)
	}{
		{"graceful", func(n *node.Node) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n.Shutdown(ctx)
		}},
		{"crash", func(n *node.Node) { n.Close() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := newMesh(t)
			pool := []string{"pr-1", "pr-2", "pr-3"}
			for _, name := range pool {
				m.start(nodeSpec{role: role.Egress, name: name, loc: "US", hint: "wnam"})
			}
			hk := m.start(nodeSpec{role: role.Ingress, name: "pr-hk", loc: "HK", providerURL: closedURL(t),
				rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}})
			m.waitMembers(hk, pool...)
			servedBy(t, m, hk, pool)

			// All at once: stop, then start again at the same addresses.
			type addrs struct{ gossip, tunnel string }
			was := map[string]addrs{}
			var wg sync.WaitGroup
			for _, name := range pool {
				m.mu.Lock()
				n := m.nodes[name]
				delete(m.nodes, name)
				m.mu.Unlock()
				was[name] = addrs{n.GossipAddr(), n.TunnelAddr()}
				wg.Go(func() { tt.stop(n) })
			}
			wg.Wait()
			for _, name := range pool {
				wg.Go(func() {
					m.start(nodeSpec{role: role.Egress, name: name, loc: "US", hint: "wnam", edit: func(c *config.Config) {
						c.Gossip.Bind, c.Tunnel.Listen = was[name].gossip, was[name].tunnel
					}})
				})
			}
			wg.Wait()
			servedBy(t, m, hk, pool)
		})
	}
}

// servedBy waits until requests through ingress have been served by every
// egress of pool.
func servedBy(t *testing.T, m *mesh, ingress *node.Node, pool []string) {
	t.Helper()
	seen := map[string]bool{}
	wait.For(t, 5*time.Second, func() error {
		resp, _ := get(t, baseURL(ingress)+"/openai/v1/models")
		if resp.StatusCode == 200 {
			seen[resp.Header.Get("X-Mesh-Egress")] = true
		}
		for _, name := range pool {
			if !seen[name] {
				return fmt.Errorf("requests served by %v; waiting for %s", seen, name)
			}
		}
		return nil
	})
}
