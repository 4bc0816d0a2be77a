package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/role"
)

const testToken = "e2e-tunnel-token"

// mesh is a set of in-process nodes and one fake provider.
type mesh struct {
	t        testing.TB
	provider *fakeprovider.Server
	mu       sync.Mutex
	nodes    map[string]*node.Node
	seed     string // gossip address of the first node
	logs     *logSink
}

func newMesh(t testing.TB) *mesh {
	t.Helper()
	fp, err := fakeprovider.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{t: t, provider: fp, nodes: map[string]*node.Node{}, logs: &logSink{}}
	t.Cleanup(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, n := range m.nodes {
			n.Close()
		}
		fp.Close()
		if t.Failed() {
			t.Logf("node logs:\n%s", m.logs.String())
		}
	})
	return m
}

// nodeSpec describes one node to start.
type nodeSpec struct {
	// profileGossip keeps gossip.profile's timers instead of fastGossip's.
	profileGossip bool
	role          role.Role
	name          string
	loc, hint     string
	rules         []config.Rule
	fallback      string
	// providerURL overrides every provider's base URL ("" = the fake provider).
	providerURL string
	token       string // "" = testToken
	clientHint  bool
	edit        func(*config.Config)
}

// closedURL is an address nothing listens on: an ingress whose providers
// point there can only succeed through the tunnel.
func closedURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func (m *mesh) start(s nodeSpec) *node.Node {
	m.t.Helper()
	cfg := config.Default(s.role)
	cfg.Node = config.Node{Name: s.name, Loc: s.loc, Hint: s.hint}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Gossip.Bind = "127.0.0.1:0"
	cfg.Gossip.Profile = "local"
	cfg.Gossip.RejoinInterval = time.Second
	m.mu.Lock()
	for _, n := range m.nodes {
		cfg.Gossip.Join = append(cfg.Gossip.Join, n.GossipAddr()) // every live node is a seed
	}
	m.mu.Unlock()
	cfg.Tunnel.Token = config.Secret(testToken)
	if s.token != "" {
		cfg.Tunnel.Token = config.Secret(s.token)
	}
	if s.role == role.Egress {
		cfg.Tunnel.Listen = "127.0.0.1:0"
	} else {
		// Loopback tests tunnel in plaintext with a token; security_test.go covers TLS.
		cfg.Tunnel.Insecure = true
	}
	cfg.Routing.Rules = s.rules
	if s.fallback != "" {
		cfg.Routing.Fallback = s.fallback
	}
	cfg.Routing.AllowClientHint = s.clientHint
	base := s.providerURL
	if base == "" {
		base = m.provider.URL
	}
	for name, p := range cfg.Providers {
		if name == "openrouter" {
			p.BaseURL = base + "/api"
		} else {
			p.BaseURL = base
		}
		cfg.Providers[name] = p
	}
	cfg.DrainTimeout = 5 * time.Second
	if s.edit != nil {
		s.edit(cfg)
	}
	rt, err := cfg.Runtime()
	if err != nil {
		m.t.Fatalf("config of %s: %v", s.name, err)
	}
	// Tests keep debug logs for failure reports, unless a spec asks for less.
	level := slog.LevelDebug
	if cfg.Log.Level != "info" {
		level = cfg.SlogLevel()
	}
	log := slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: level})).With("node", s.name)
	opts := node.Options{TuneGossip: fastGossip}
	if s.profileGossip {
		opts.TuneGossip = nil
	}
	n, err := node.Start(rt, log, opts)
	if err != nil {
		m.t.Fatalf("start %s: %v", s.name, err)
	}
	m.mu.Lock()
	m.nodes[s.name] = n
	if m.seed == "" {
		m.seed = n.GossipAddr()
	}
	m.mu.Unlock()
	return n
}

// fastGossip shortens memberlist's timers so failures are seen in a second
// or two on loopback.
func fastGossip(c *membership.Config) {
	c.Tune = func(mc *memberlist.Config) {
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.PushPullInterval = time.Second
		mc.SuspicionMult = 2
	}
}

// stop shuts a node down gracefully.
func (m *mesh) stop(name string) {
	m.mu.Lock()
	n := m.nodes[name]
	delete(m.nodes, name)
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		m.t.Errorf("shutdown %s: %v", name, err)
	}
}

// waitMembers waits until n sees each named node alive.
func (m *mesh) waitMembers(n *node.Node, want ...string) {
	m.t.Helper()
	m.waitMembersWithin(n, 10*time.Second, want...)
}

// waitMembersWithin is waitMembers with a deadline of its own.
func (m *mesh) waitMembersWithin(n *node.Node, d time.Duration, want ...string) {
	m.t.Helper()
	wait.For(m.t, d, func() error {
		snap := n.Members()
		for _, name := range want {
			mem, ok := snap.Get(name)
			if !ok || mem.State != membership.StateAlive {
				return fmt.Errorf("%s does not see %s alive: %+v", n.Name(), name, snap.Members)
			}
		}
		return nil
	})
}

func baseURL(n *node.Node) string { return "http://" + n.HTTPAddr() }

// accessLog waits for the access log line that node wrote for the request
// resp answers, found by its request id (the line is written once the
// response ended).
func (m *mesh) accessLog(t *testing.T, node string, resp *http.Response) string {
	t.Helper()
	id := resp.Header.Get(proxy.HeaderRequestID)
	var line string
	wait.For(t, 5*time.Second, func() error {
		for l := range strings.Lines(m.logs.String()) {
			if strings.Contains(l, "msg=request node="+node+" ") && strings.Contains(l, " id="+id+" ") {
				line = l
				return nil
			}
		}
		return fmt.Errorf("no access log line from %s for request %q", node, id)
	})
	return line
}

// logSink collects every node's log lines for failure reports and for the
// secret scan.
type logSink struct {
	mu      sync.Mutex
	b       strings.Builder
	discard bool // benchmarks: keep nothing
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.discard {
		return len(p), nil
	}
	if os.Getenv("E2E_LOG") != "" {
		os.Stderr.Write(p)
	}
	return l.b.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// do sends a request and returns the response with its body read.
func do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func newRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
