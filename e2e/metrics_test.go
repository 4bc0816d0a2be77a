package e2e

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// families is one scrape of a node's /metrics.
type families map[string]*dto.MetricFamily

func scrape(t *testing.T, n *node.Node) families {
	t.Helper()
	resp, err := http.Get(baseURL(n) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics of %s: %v", n.Name(), err)
	}
	return fams
}

// sum adds the values of name's series whose labels include want
// (histograms: their counts).
func (f families) sum(name string, want ...string) float64 {
	fam, ok := f[name]
	if !ok {
		return math.NaN()
	}
	total := 0.0
series:
	for _, m := range fam.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			if !hasLabel(m, want[i], want[i+1]) {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			total += m.Untyped.GetValue()
		}
	}
	return total
}

// histSum is the sum of the observations of name's series with labels want.
func (f families) histSum(name string, want ...string) float64 {
	total := 0.0
	for _, m := range f[name].GetMetric() {
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && hasLabel(m, want[i], want[i+1])
		}
		if ok {
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return value == ""
}

// TestMetricsAfterTraffic runs traffic through a mutual-TLS mesh (one
// egress refusing the ingress's token, so requests fail over) and checks
// every metric family on the ingress and an egress.
func TestMetricsAfterTraffic(t *testing.T) {
	ca := newMeshCA(t)
	m := newMesh(t)
	rules := []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}
	good := m.start(nodeSpec{role: role.Egress, name: "wnam-good", loc: "US", hint: "wnam", edit: ca.tls(role.Egress, "wnam", "wnam-good")})
	m.start(nodeSpec{role: role.Egress, name: "wnam-bad", loc: "US", hint: "wnam", token: "another-token",
		edit: ca.tls(role.Egress, "wnam", "wnam-bad")})
	hk := m.start(nodeSpec{role: role.Ingress, name: "hk-1", loc: "HK", hint: "apac", rules: rules, clientHint: true,
		edit: ca.tls(role.Ingress, "", "hk-1")})
	m.waitMembers(hk, "wnam-good", "wnam-bad")

	chat := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
	post := func() {
		t.Helper()
		req := newRequest(t, "POST", baseURL(hk)+"/openai/v1/chat/completions", strings.NewReader(chat))
		req.Header.Set("Content-Type", "application/json")
		if resp, body := do(t, req); resp.StatusCode != 200 {
			t.Fatalf("chat: %d %s", resp.StatusCode, body)
		}
	}
	// Until a request met the refusing egress and failed over (the pick is
	// random; an ejected egress is skipped for a while).
	sent := 0
	wait.For(t, 10*time.Second, func() error {
		post()
		sent++
		if n := scrape(t, hk).sum("llmesh_failovers_total", "reason", "unauthenticated"); n < 1 {
			return fmt.Errorf("no failover yet after %d requests", sent)
		}
		return nil
	})
	if resp, _ := do(t, newRequest(t, "GET", baseURL(hk)+"/nosuch/v1/models", nil)); resp.StatusCode != 404 {
		t.Fatalf("unknown provider: %d", resp.StatusCode)
	}
	req := newRequest(t, "GET", baseURL(hk)+"/openai/v1/models", nil)
	req.Header.Set("X-Mesh-Hint", "weur")
	if resp, body := do(t, req); resp.StatusCode != 503 {
		t.Fatalf("hint without egress: %d %s", resp.StatusCode, body)
	}
	// memberlist probes on its own schedule: wait for its families to fill.
	var in, eg families
	wait.For(t, 10*time.Second, func() error {
		in, eg = scrape(t, hk), scrape(t, good)
		for _, f := range []families{in, eg} {
			if f.sum("llmesh_gossip_probe_duration_seconds") < 1 || f.sum("llmesh_gossip_nodes", "state", "alive") < 3 {
				return fmt.Errorf("gossip metrics not filled yet")
			}
		}
		return nil
	})

	now := float64(time.Now().Unix())
	checks := []struct {
		name  string
		node  families
		value float64
		ok    func(float64) bool
	}{
		{"2xx through the tunnel", in, in.sum("llmesh_requests_total", "provider", "openai", "route", "egress", "egress", "wnam-good", "code_class", "2xx"), eq(float64(sent))},
		{"unknown provider is other/rejected", in, in.sum("llmesh_requests_total", "provider", "other", "route", "rejected", "code_class", "4xx"), eq(1)},
		{"no egress is rejected 5xx", in, in.sum("llmesh_requests_total", "provider", "openai", "route", "rejected", "code_class", "5xx"), eq(1)},
		{"relayed on the egress", eg, eg.sum("llmesh_requests_total", "provider", "openai", "route", "relay", "code_class", "2xx"), eq(float64(sent))},
		{"duration observed", in, in.sum("llmesh_request_duration_seconds", "provider", "openai", "route", "egress"), eq(float64(sent))},
		{"time to first byte observed", in, in.sum("llmesh_time_to_first_byte_seconds", "provider", "openai", "route", "egress"), eq(float64(sent))},
		{"overhead observed", in, in.sum("llmesh_mesh_overhead_seconds", "provider", "openai", "route", "egress"), eq(float64(sent))},
		{"overhead under a second per request", in, in.histSum("llmesh_mesh_overhead_seconds", "route", "egress") / float64(sent), between(0, 1)},
		{"egress overhead observed", eg, eg.sum("llmesh_mesh_overhead_seconds", "route", "relay"), eq(float64(sent))},
		{"request bytes", in, in.sum("llmesh_request_body_bytes_total", "provider", "openai", "route", "egress"), eq(float64(sent * len(chat)))},
		{"request bytes at the egress", eg, eg.sum("llmesh_request_body_bytes_total", "route", "relay"), eq(float64(sent * len(chat)))},
		{"response bytes", in, in.sum("llmesh_response_body_bytes_total", "provider", "openai", "route", "egress"), above(0)},
		{"nothing in flight", in, in.sum("llmesh_requests_in_flight"), eq(0)},
		{"no tunnel stream open", in, in.sum("llmesh_tunnel_streams_in_flight"), eq(0)},
		{"no tunnel stream served now", eg, eg.sum("llmesh_tunnel_streams_in_flight"), eq(0)},
		{"streams served", eg, eg.sum("llmesh_tunnel_streams_total", "code", "OK"), eq(float64(sent))},
		{"retries", in, in.sum("llmesh_retries_total", "reason", "failover"), above(0)},
		{"ejections", in, in.sum("llmesh_egress_ejections_total", "reason", "unauthenticated"), above(0)},
		{"reroutes at zero", in, in.sum("llmesh_reroutes_total", "reason", "fallback-nearest"), eq(0)},
		{"no egress for weur", in, in.sum("llmesh_no_egress_total", "hint", "weur"), eq(1)},
		{"egress members", in, in.sum("llmesh_members", "role", "egress", "hint", "wnam", "state", "alive"), eq(2)},
		{"member changes", in, in.sum("llmesh_member_state_changes_total", "role", "egress", "hint", "wnam", "state", "alive"), eq(2)},
		{"replay budget released", in, in.sum("llmesh_replay_bytes"), eq(0)},
		{"no reload yet", in, in.sum("llmesh_config_reloads_total"), eq(0)},
		{"config loaded at start", in, in.sum("llmesh_config_last_reload_success_timestamp_seconds"), between(now-120, now+1)},
		{"node certificate expiry", in, in.sum("llmesh_certificate_expiry_timestamp_seconds", "cert", "node"), between(now+3500, now+3700)},
		{"CA expiry", eg, eg.sum("llmesh_certificate_expiry_timestamp_seconds", "cert", "ca"), between(now+23*3600, now+25*3600)},
		{"gossip packets sent", in, in.sum("llmesh_gossip_sent_packets_total", "transport", "udp"), above(0)},
		{"gossip bytes sent", in, in.sum("llmesh_gossip_sent_bytes_total", "transport", "udp"), above(0)},
		{"gossip packets received", eg, eg.sum("llmesh_gossip_received_packets_total", "transport", "udp"), above(0)},
		{"gossip bytes received", eg, eg.sum("llmesh_gossip_received_bytes_total", "transport", "udp"), above(0)},
		{"gossip tcp connections", in, in.sum("llmesh_gossip_tcp_connections_total"), above(0)},
		{"gossip health", in, in.sum("llmesh_gossip_health_score"), eq(0)},
		{"gossip queue", in, in.sum("llmesh_gossip_broadcast_queue_depth"), between(0, 100)},
		{"build info", in, in.sum("llmesh_build_info", "role", "ingress"), eq(1)},
	}
	for _, c := range checks {
		if !c.ok(c.value) {
			t.Errorf("%s: %v", c.name, c.value)
		}
	}
	if t.Failed() {
		t.Logf("ingress:\n%s", dump(in))
	}

	// Every family either node exposes is documented, and every documented
	// llmesh_* family is exposed by one of them.
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	for _, f := range []families{in, eg} {
		for name := range f {
			if strings.HasPrefix(name, "llmesh_") {
				exposed[name] = true
				if !strings.Contains(string(doc), "`"+name+"`") {
					t.Errorf("%s is not documented in docs/operations.md", name)
				}
			}
		}
	}
	for _, name := range regexp.MustCompile("`(llmesh_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		if !exposed[name[1]] {
			t.Errorf("docs/operations.md documents %s, which no node exposes", name[1])
		}
	}
	checkAlertNames(t, exposed)
}

// checkAlertNames fails t when an expression of deploy/prometheus names a
// metric that no node exposes.
func checkAlertNames(t *testing.T, exposed map[string]bool) {
	t.Helper()
	for _, file := range []string{"../deploy/prometheus/alerts.yml", "../deploy/prometheus/prometheus.yml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range regexp.MustCompile(`\bllmesh_[a-z_]+`).FindAllString(string(b), -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if trimmed, ok := strings.CutSuffix(name, suffix); ok && exposed[trimmed] {
					base = trimmed
				}
			}
			if !exposed[base] {
				t.Errorf("%s names %s, which no node exposes", file, name)
			}
		}
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func above(min float64) func(float64) bool {
	return func(v float64) bool { return v > min }
}
func between(lo, hi float64) func(float64) bool {
	return func(v float64) bool { return v >= lo && v <= hi }
}

func dump(f families) string {
	var names []string
	for name := range f {
		if strings.HasPrefix(name, "llmesh_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		expfmt.MetricFamilyToText(&b, f[name])
	}
	return b.String()
}
