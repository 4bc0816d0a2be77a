package node

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/routing"
)

// fakeConn is a tunnel connection as the router sees it.
type fakeConn struct{ usable bool }

func (c *fakeConn) RoundTrip(*http.Request) (*http.Response, error) { return nil, errors.New("unused") }

// testMesh is the egress nodes and connections a test router sees.
type testMesh struct {
	egress []routing.Candidate
	conns  map[string]*fakeConn
}

func (m *testMesh) add(name, hint string, usable bool) {
	m.egress = append(m.egress, routing.Candidate{Name: name, Hint: hint})
	if m.conns == nil {
		m.conns = map[string]*fakeConn{}
	}
	m.conns[name] = &fakeConn{usable: usable}
}

// pick is tunnel.Pool.Pick over m: usable connections not in exclude.
func (m *testMesh) pick(hint string, exclude []string) (string, http.RoundTripper, bool) {
	var cands []routing.Candidate
	for _, e := range m.egress {
		if m.conns[e.Name].usable && !slices.Contains(exclude, e.Name) {
			cands = append(cands, e)
		}
	}
	name, ok := routing.List(cands, func(int) int { return 0 })(hint)
	if !ok {
		return "", nil, false
	}
	return name, m.conns[name], true
}

// newTestRouter routes over m with policy, at the time *now says.
func newTestRouter(m *testMesh, policy routing.Policy, now *time.Time) *router {
	return &router{
		pick:       m.pick,
		log:        slog.New(slog.DiscardHandler),
		now:        func() time.Time { return *now },
		policy:     policy,
		regionHint: "wnam",
		regionTTL:  15 * time.Minute,
		blocked:    new(sync.Map),
	}
}

var (
	hkRules    = routing.Policy{Loc: "HK", Rules: []routing.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}, Fallback: routing.FallbackFail}
	noRules    = routing.Policy{Loc: "SG", Fallback: routing.FallbackFail}
	openAI     = &provider.Provider{Name: "openai", Style: provider.StyleOpenAI}
	aRequest   = httptest.NewRequest("POST", "/openai/v1/chat/completions", nil)
	errorCode  = func(err error) string { var pe *provider.Error; errors.As(err, &pe); return pe.Code }
	targetName = func(t proxy.Target) string { return string(t.Route) + "/" + t.Egress }
)

func TestRouterRoute(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    routing.Policy
		egress    [][3]any // name, hint, usable
		plaintext bool
		want      string // route/egress, or the error code
	}{
		{"rule to the usable egress", hkRules, [][3]any{{"a", "wnam", false}, {"b", "wnam", true}}, false, "egress/b"},
		{"no usable egress", hkRules, [][3]any{{"a", "wnam", false}}, false, "no_egress"},
		{"only another hint", hkRules, [][3]any{{"a", "weur", true}}, false, "no_egress"},
		{"no rule: direct", noRules, [][3]any{{"a", "wnam", true}}, false, "direct/"},
		{"plaintext with a usable egress", hkRules, [][3]any{{"a", "wnam", true}}, true, "tunnel_insecure"},
		{"plaintext with none usable", hkRules, [][3]any{{"a", "wnam", false}}, true, "tunnel_insecure"},
		{"plaintext, no rule: direct", noRules, nil, true, "direct/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &testMesh{}
			for _, e := range tc.egress {
				m.add(e[0].(string), e[1].(string), e[2].(bool))
			}
			now := time.Now()
			rt := newTestRouter(m, tc.policy, &now)
			rt.plaintext = tc.plaintext
			got, err := rt.Route(aRequest, openAI)
			if err != nil {
				if code := errorCode(err); code != tc.want {
					t.Fatalf("error %v (%s), want %s", err, code, tc.want)
				}
				return
			}
			if targetName(got) != tc.want {
				t.Fatalf("routed to %s, want %s", targetName(got), tc.want)
			}
		})
	}
}

// TestRouterRetryExcludesTried: a retry never picks an egress already
// tried, and gives up when none is left.
func TestRouterRetryExcludesTried(t *testing.T) {
	m := &testMesh{}
	m.add("a", "wnam", true)
	m.add("b", "wnam", true)
	now := time.Now()
	rt := newTestRouter(m, hkRules, &now)
	first, err := rt.Route(aRequest, openAI)
	if err != nil {
		t.Fatal(err)
	}
	tried := []string{first.Egress}
	second, ok := rt.Retry(aRequest, openAI, tried)
	if !ok || second.Egress == "" || slices.Contains(tried, second.Egress) {
		t.Fatalf("retry after %v went to %q (%v)", tried, second.Egress, ok)
	}
	tried = append(tried, second.Egress)
	if third, ok := rt.Retry(aRequest, openAI, tried); ok {
		t.Fatalf("a third try went to %q with every egress tried", third.Egress)
	}
}

// TestRouterRemembersRegionRefusals: after a refusal, the provider's direct
// requests go through the rerouting pool until region_block_ttl passes;
// other providers stay direct; a plaintext ingress never reroutes.
func TestRouterRemembersRegionRefusals(t *testing.T) {
	m := &testMesh{}
	m.add("w1", "wnam", true)
	now := time.Now()
	rt := newTestRouter(m, noRules, &now)
	if got, _ := rt.Route(aRequest, openAI); targetName(got) != "direct/" {
		t.Fatalf("before any refusal: %s", targetName(got))
	}
	next, ok := rt.RegionRefused(aRequest, openAI)
	if !ok || next.Egress != "w1" || next.Reroute != "region-block" || !next.Tunnel {
		t.Fatalf("reroute target %+v, %v", next, ok)
	}
	if got, _ := rt.Route(aRequest, openAI); targetName(got) != "egress/w1" || got.Reason != "region-block" {
		t.Fatalf("after the refusal: %s (%s)", targetName(got), got.Reason)
	}
	anthropic := &provider.Provider{Name: "anthropic", Style: provider.StyleAnthropic}
	if got, _ := rt.Route(aRequest, anthropic); targetName(got) != "direct/" {
		t.Fatalf("another provider: %s", targetName(got))
	}
	// A failed egress of the rerouting pool is not followed by the direct
	// path the provider refuses.
	if got, ok := rt.Retry(aRequest, openAI, []string{"w1"}); ok {
		t.Fatalf("retried to %s", targetName(got))
	}
	now = now.Add(15*time.Minute + time.Second)
	if got, _ := rt.Route(aRequest, openAI); targetName(got) != "direct/" {
		t.Fatalf("after region_block_ttl: %s", targetName(got))
	}

	rt = newTestRouter(m, noRules, &now)
	rt.plaintext = true
	if got, ok := rt.RegionRefused(aRequest, openAI); ok {
		t.Fatalf("a plaintext ingress rerouted to %s", targetName(got))
	}
}

// TestRouterEagerHints: an ingress connects at once only to the egress
// nodes its rules or its region-block pool name.
func TestRouterEagerHints(t *testing.T) {
	now := time.Now()
	rt := newTestRouter(&testMesh{}, hkRules, &now) // rules: HK → wnam; region pool: wnam
	rt.regionHint = "weur"
	for hint, want := range map[string]bool{"wnam": true, "weur": true, "enam": false, "apac": false, "": false} {
		if got := rt.eager(hint); got != want {
			t.Errorf("eager(%q) = %v, want %v", hint, got, want)
		}
	}
	rt = newTestRouter(&testMesh{}, noRules, &now)
	rt.regionHint = ""
	if rt.eager("wnam") {
		t.Error("an ingress without rules or region pool connects eagerly")
	}
}
