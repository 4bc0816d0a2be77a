package e2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// scaleHints are the egress pools of the scale mesh.
var scaleHints = []string{"wnam", "weur", "apac"}

// TestScale: a mesh of in-process nodes on loopback converges, routes every
// ingress's requests to an egress of its rule's hint, and, when three egress
// nodes of one hint die without leaving, loses no request sent after they
// died while every ingress detects them. make test runs 20 nodes with fast
// gossip timers; LLMESH_SCALE=1 (make scale) runs 100 nodes (20 ingress, 80
// egress) with the lan profile's own timers.
func TestScale(t *testing.T) {
	ingress, egress, profile := 4, 16, ""
	if os.Getenv("LLMESH_SCALE") != "" {
		ingress, egress, profile = 20, 80, "lan"
	}
	m := newMesh(t)
	start := time.Now()
	var seeds []string
	spec := func(r role.Role, name string) nodeSpec {
		return nodeSpec{role: r, name: name, profileGossip: profile != "", edit: func(c *config.Config) {
			// Three seeds, as a deployment would list them: joining every
			// node already up makes start-up quadratic in the mesh's size.
			c.Gossip.Join = slices.Clone(seeds)
			// The default: the harness's 1 s makes every node push and pull
			// the whole state with the seeds each second.
			c.Gossip.RejoinInterval = config.Default(r).Gossip.RejoinInterval
			if profile != "" {
				c.Gossip.Profile = profile
			}
			c.Log.Level = "warn" // 100 nodes' debug logs would be most of the test's memory
		}}
	}
	var egresses []string
	for i := range egress {
		s := spec(role.Egress, "eg-"+strconv.Itoa(i))
		s.loc, s.hint = "US", scaleHints[i%len(scaleHints)]
		n := m.start(s)
		if len(seeds) < 3 {
			seeds = append(seeds, n.GossipAddr())
		}
		egresses = append(egresses, s.name)
	}
	var ingresses []*node.Node
	for i := range ingress {
		s := spec(role.Ingress, "in-"+strconv.Itoa(i))
		s.loc = "HK"
		s.rules = []config.Rule{{Locs: []string{"HK"}, Hint: scaleHints[i%len(scaleHints)]}}
		s.providerURL = closedURL(t) // a 200 can only have come through the tunnel
		ingresses = append(ingresses, m.start(s))
	}
	started := time.Since(start)
	all := append(slices.Clone(egresses), names(ingresses)...)
	for _, n := range ingresses {
		m.waitMembersWithin(n, time.Minute, all...)
	}
	t.Logf("%d nodes: started in %v, converged %v later", len(all), started.Round(time.Millisecond), (time.Since(start) - started).Round(time.Millisecond))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	t.Cleanup(client.CloseIdleConnections)
	send := func(i int) error {
		n, hint := ingresses[i%len(ingresses)], scaleHints[i%len(ingresses)%len(scaleHints)]
		resp, err := client.Get(baseURL(n) + "/openai/v1/models")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Mesh-Hint") != hint {
			return fmt.Errorf("%s: status %d, hint %q, want 200 from %s", n.Name(), resp.StatusCode, resp.Header.Get("X-Mesh-Hint"), hint)
		}
		return nil
	}
	for i := range 3 * len(ingresses) {
		if err := send(i); err != nil {
			t.Fatal(err)
		}
	}

	// Three egress nodes of the first hint die, no request in flight.
	killed := []string{egresses[0], egresses[len(scaleHints)], egresses[2*len(scaleHints)]}
	l := startLoad(t, 8, func(w, i int) error { return send(w + 8*i) })
	l.progress(t, 50, 10*time.Second)
	sentBefore := l.finish(t)
	for _, name := range killed {
		m.kill(name)
	}
	died := time.Now()
	l = startLoad(t, 8, func(w, i int) error { return send(w + 8*i) })
	for _, n := range ingresses {
		wait.For(t, time.Minute, func() error { return notAlive(n.Members(), killed) })
	}
	detected := time.Since(died)
	l.progress(t, 50, 10*time.Second)
	sent := l.finish(t)
	t.Logf("%d egress killed: every ingress saw them gone after %v; %d requests before, %d after, 0 failed", len(killed), detected.Round(time.Millisecond), sentBefore, sent)
}

func names(nodes []*node.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name()
	}
	return out
}

// notAlive reports an error while snap lists one of names alive.
func notAlive(snap *membership.Snapshot, names []string) error {
	for _, name := range names {
		if mem, ok := snap.Get(name); ok && mem.State == membership.StateAlive {
			return fmt.Errorf("%s still listed alive", name)
		}
	}
	return nil
}

// kill stops a node at once, as a crash would: no drain, no leave.
func (m *mesh) kill(name string) {
	m.mu.Lock()
	n := m.nodes[name]
	delete(m.nodes, name)
	m.mu.Unlock()
	n.Close()
}
