package metrics

import (
	"strings"
	"testing"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestObserveCodeClasses(t *testing.T) {
	for _, tc := range []struct {
		code  int
		class string
	}{
		{101, "1xx"}, {200, "2xx"}, {204, "2xx"}, {302, "3xx"}, {404, "4xx"}, {499, "4xx"},
		{503, "5xx"}, {599, "5xx"}, {600, "other"}, {0, "other"}, {99, "other"},
	} {
		m := New("ingress", "test")
		m.Series("openai", "direct", "").Observe(Request{Code: tc.code, Overhead: -1})
		if got := testutil.ToFloat64(m.requests.WithLabelValues("openai", "direct", "", tc.class)); got != 1 {
			t.Errorf("code %d: %s count %v, want 1", tc.code, tc.class, got)
		}
	}
}

func TestSeriesUnknownProviderIsOther(t *testing.T) {
	m := New("ingress", "test")
	if m.Series("", "rejected", "") != m.Series(OtherProvider, "rejected", "") {
		t.Error("the empty provider and other are different series")
	}
	first := m.Series("openai", "egress", "wnam-1")
	if m.Series("openai", "egress", "wnam-1") != first {
		t.Error("a series is resolved twice")
	}
}

// TestObserveAllocatesNothing: the request path's metrics cost no
// allocation once a series exists.
func TestObserveAllocatesNothing(t *testing.T) {
	m := New("ingress", "test")
	m.Series("openai", "egress", "wnam-1")
	r := Request{Code: 200, Total: time.Second, FirstByte: time.Millisecond, Overhead: time.Millisecond, BytesIn: 10, BytesOut: 20}
	if n := testing.AllocsPerRun(100, func() {
		s := m.Series("openai", "egress", "wnam-1")
		s.Begin()
		s.End()
		s.Observe(r)
	}); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	s := m.Series("openai", "direct", "")
	s.Begin()
	s.End()
	s.Observe(Request{Code: 200})
	m.Retry("failover")
	m.Failover("unavailable")
	m.Ejection("unavailable")
	m.Reroute("region-block")
	m.NoEgress("wnam")
	m.ConfigReload(true)
	m.SetMembers(nil)
	m.AddReplayBytes(1)
	if m.GossipLabels() != nil {
		t.Error("a nil Metrics has gossip labels")
	}
	m.Close()
}

func TestHintLabelIsBounded(t *testing.T) {
	for in, want := range map[string]string{"wnam": "wnam", "me": "me", "": "", "WNAM": "other", "evil\n": "other", "x": "other"} {
		if got := Hint(in); got != want {
			t.Errorf("Hint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSetMembersCountsStateChanges(t *testing.T) {
	m := New("ingress", "test")
	m.SetMembers([]Member{{Name: "a", Role: "egress", Hint: "wnam", State: "alive"}, {Name: "b", Role: "egress", Hint: "wnam", State: "alive"}})
	m.SetMembers([]Member{{Name: "a", Role: "egress", Hint: "wnam", State: "dead"}, {Name: "b", Role: "egress", Hint: "wnam", State: "alive"}})
	m.SetMembers([]Member{{Name: "a", Role: "egress", Hint: "wnam", State: "alive"}, {Name: "b", Role: "egress", Hint: "wnam", State: "alive"},
		{Name: "c", Role: "spoofed", Hint: "mars", State: "alive"}})
	for _, tc := range []struct {
		role, hint, state string
		changes, now      float64
	}{
		{"egress", "wnam", "alive", 3, 2},
		{"egress", "wnam", "dead", 1, 0},
		{"other", "other", "alive", 1, 1},
	} {
		if got := testutil.ToFloat64(m.memberChanges.WithLabelValues(tc.role, tc.hint, tc.state)); got != tc.changes {
			t.Errorf("%s/%s entering %s: %v changes, want %v", tc.role, tc.hint, tc.state, got, tc.changes)
		}
		if got := testutil.ToFloat64(m.members.WithLabelValues(tc.role, tc.hint, tc.state)); got != tc.now {
			t.Errorf("%s/%s %s: %v members, want %v", tc.role, tc.hint, tc.state, got, tc.now)
		}
	}
}

func TestConfigReload(t *testing.T) {
	m := New("ingress", "test")
	m.lastReload.Set(0)
	m.ConfigReload(false)
	if testutil.ToFloat64(m.lastReload) != 0 {
		t.Error("a failed reload moved the last success")
	}
	m.ConfigReload(true)
	if got := testutil.ToFloat64(m.lastReload); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v", got)
	}
	if testutil.ToFloat64(m.reloads.WithLabelValues("success")) != 1 || testutil.ToFloat64(m.reloads.WithLabelValues("failure")) != 1 {
		t.Error("reloads not counted by result")
	}
}

// TestGossipMetricsPerNode: memberlist emits into go-metrics' process-wide
// sink; each node's emissions reach its own registry only.
func TestGossipMetricsPerNode(t *testing.T) {
	a, b := New("ingress", "test"), New("egress", "test")
	la, lb := a.GossipLabels(), b.GossipLabels()
	defer a.Close()
	defer b.Close()
	gometrics.IncrCounterWithLabels([]string{"memberlist", "udp", "sent"}, 100, la)
	gometrics.IncrCounterWithLabels([]string{"memberlist", "udp", "sent"}, 7, lb)
	gometrics.IncrCounterWithLabels([]string{"memberlist", "msg", "suspect"}, 1, la)
	gometrics.MeasureSinceWithLabels([]string{"memberlist", "probeNode"}, time.Now().Add(-20*time.Millisecond), la)
	gometrics.SetGaugeWithLabels([]string{"memberlist", "health", "score"}, 2, lb)
	gometrics.SetGaugeWithLabels([]string{"memberlist", "node", "instances"}, 3,
		append(la, gometrics.Label{Name: "node_state", Value: "alive"}))
	gometrics.IncrCounterWithLabels([]string{"memberlist", "udp", "sent"}, 1000, nil) // no node: dropped
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"a sent bytes", testutil.ToFloat64(a.gossip().sentBytes.WithLabelValues("udp")), 100},
		{"a sent packets", testutil.ToFloat64(a.gossip().sentPackets.WithLabelValues("udp")), 1},
		{"b sent bytes", testutil.ToFloat64(b.gossip().sentBytes.WithLabelValues("udp")), 7},
		{"a suspicions", testutil.ToFloat64(a.gossip().memberMsgs.WithLabelValues("suspect")), 1},
		{"b suspicions", testutil.ToFloat64(b.gossip().memberMsgs.WithLabelValues("suspect")), 0},
		{"a health", testutil.ToFloat64(a.gossip().health), 0},
		{"b health", testutil.ToFloat64(b.gossip().health), 2},
		{"a alive nodes", testutil.ToFloat64(a.gossip().nodes.WithLabelValues("alive")), 3},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	probes, err := testutil.GatherAndCount(a.Registry, "llmesh_gossip_probe_duration_seconds")
	if err != nil || probes != 1 {
		t.Errorf("probe histogram: %d series, %v", probes, err)
	}
	if err := testutil.GatherAndCompare(a.Registry, strings.NewReader(`
# HELP llmesh_gossip_probe_duration_seconds Failure-detector probes of one member, and how long each took (its count is the probes made).
# TYPE llmesh_gossip_probe_duration_seconds histogram
llmesh_gossip_probe_duration_seconds_bucket{le="0.001"} 0
llmesh_gossip_probe_duration_seconds_bucket{le="0.005"} 0
llmesh_gossip_probe_duration_seconds_bucket{le="0.01"} 0
llmesh_gossip_probe_duration_seconds_bucket{le="0.05"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="0.1"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="0.25"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="0.5"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="1"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="2.5"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="5"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="10"} 1
llmesh_gossip_probe_duration_seconds_bucket{le="+Inf"} 1
`), "llmesh_gossip_probe_duration_seconds_bucket"); err != nil {
		t.Error(err)
	}
	// A closed node's emissions go nowhere.
	ga := a.gossip()
	a.Close()
	gometrics.IncrCounterWithLabels([]string{"memberlist", "udp", "sent"}, 100, la)
	if got := testutil.ToFloat64(ga.sentBytes.WithLabelValues("udp")); got != 100 {
		t.Errorf("a closed node still counts: %v", got)
	}
}

// gossip is m's gossip families (tests).
func (m *Metrics) gossip() *gossip {
	globalSink.mu.RLock()
	defer globalSink.mu.RUnlock()
	return globalSink.nodes[m.gossipID]
}
