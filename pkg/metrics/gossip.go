package metrics

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// memberlist reports its own health (probes, suspicions, queue depth,
// packets and bytes) through go-metrics, whose sink is one per process:
// every memberlist instance emits into the same global. Each node's
// memberlist labels its metrics with nodeLabel (GossipLabels), and one
// global sink, installed on first use, hands each emission to the node it
// names: several nodes in one process (tests) keep apart, and each node's
// gossip families sit in its own registry under documented names.
//
// go-metrics' own Prometheus sink is not used: it registers one family per
// key it meets, named after memberlist's internals, in one registry.

const nodeLabel = "llmesh_node"

// gossip are one node's gossip families.
type gossip struct {
	sentPackets     *prometheus.CounterVec
	sentBytes       *prometheus.CounterVec
	receivedPackets *prometheus.CounterVec
	receivedBytes   *prometheus.CounterVec
	tcpConns        *prometheus.CounterVec
	probes          prometheus.Histogram
	pushPulls       prometheus.Histogram
	memberMsgs      *prometheus.CounterVec
	degraded        *prometheus.CounterVec
	health          prometheus.Gauge
	queue           prometheus.Gauge
	nodes           *prometheus.GaugeVec
}

func newGossip(reg prometheus.Registerer) *gossip {
	byTransport := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"transport"})
	}
	g := &gossip{
		sentPackets:     byTransport("llmesh_gossip_sent_packets_total", "Gossip packets (udp) and stream messages (tcp) sent."),
		sentBytes:       byTransport("llmesh_gossip_sent_bytes_total", "Gossip bytes sent."),
		receivedPackets: byTransport("llmesh_gossip_received_packets_total", "Gossip packets received (udp)."),
		receivedBytes:   byTransport("llmesh_gossip_received_bytes_total", "Gossip bytes received (udp)."),
		tcpConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_gossip_tcp_connections_total",
			Help: "Gossip TCP connections (push/pull state exchanges, fallback probes), by direction (in, out).",
		}, []string{"direction"}),
		probes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "llmesh_gossip_probe_duration_seconds",
			Help:    "Failure-detector probes of one member, and how long each took (its count is the probes made).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		pushPulls: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "llmesh_gossip_push_pull_duration_seconds",
			Help:    "Full state exchanges with a member, and how long each took.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		memberMsgs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_gossip_member_messages_total",
			Help: "Member state messages processed, by type: alive, suspect (a suspicion), dead.",
		}, []string{"type"}),
		degraded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_gossip_degraded_total",
			Help: "Signs of this node's own ill health, by kind: probe (a probe interval stretched by a bad health score), timeout (a member declared dead with fewer confirmations than wanted).",
		}, []string{"kind"}),
		health: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmesh_gossip_health_score",
			Help: "memberlist's awareness score: 0 is healthy; higher means this node misses acks and slows its probing.",
		}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmesh_gossip_broadcast_queue_depth",
			Help: "Gossip broadcasts waiting to be sent, at the last check.",
		}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmesh_gossip_nodes",
			Help: "Nodes in memberlist's own table, by state (alive, suspect, dead, left), at the last state exchange.",
		}, []string{"state"}),
	}
	// At 0 from the start, so rates have a series before the first event.
	for _, kind := range []string{"probe", "timeout"} {
		g.degraded.WithLabelValues(kind)
	}
	for _, typ := range []string{"alive", "suspect", "dead"} {
		g.memberMsgs.WithLabelValues(typ)
	}
	for _, dir := range []string{"in", "out"} {
		g.tcpConns.WithLabelValues(dir)
	}
	for _, transport := range []string{"udp", "tcp"} {
		g.sentPackets.WithLabelValues(transport)
		g.sentBytes.WithLabelValues(transport)
	}
	g.receivedPackets.WithLabelValues("udp")
	g.receivedBytes.WithLabelValues("udp")
	reg.MustRegister(g.sentPackets, g.sentBytes, g.receivedPackets, g.receivedBytes, g.tcpConns, g.probes,
		g.pushPulls, g.memberMsgs, g.degraded, g.health, g.queue, g.nodes)
	return g
}

// counter applies a go-metrics counter increment.
func (g *gossip) counter(key string, val float32) {
	v := float64(val)
	switch key {
	case "memberlist.udp.sent":
		g.sentPackets.WithLabelValues("udp").Inc()
		g.sentBytes.WithLabelValues("udp").Add(v)
	case "memberlist.tcp.sent":
		g.sentPackets.WithLabelValues("tcp").Inc()
		g.sentBytes.WithLabelValues("tcp").Add(v)
	case "memberlist.udp.received":
		g.receivedPackets.WithLabelValues("udp").Inc()
		g.receivedBytes.WithLabelValues("udp").Add(v)
	case "memberlist.tcp.accept":
		g.tcpConns.WithLabelValues("in").Add(v)
	case "memberlist.tcp.connect":
		g.tcpConns.WithLabelValues("out").Add(v)
	case "memberlist.msg.alive", "memberlist.msg.suspect", "memberlist.msg.dead":
		g.memberMsgs.WithLabelValues(strings.TrimPrefix(key, "memberlist.msg.")).Add(v)
	case "memberlist.degraded.probe", "memberlist.degraded.timeout":
		g.degraded.WithLabelValues(strings.TrimPrefix(key, "memberlist.degraded.")).Add(v)
	}
}

// sample applies a go-metrics sample; timers are in milliseconds.
func (g *gossip) sample(key string, val float32) {
	switch key {
	case "memberlist.probeNode":
		g.probes.Observe(float64(val) / 1e3)
	case "memberlist.pushPullNode":
		g.pushPulls.Observe(float64(val) / 1e3)
	case "memberlist.queue.broadcasts":
		g.queue.Set(float64(val))
	}
}

func (g *gossip) gauge(key string, val float32, labels []gometrics.Label) {
	switch key {
	case "memberlist.health.score":
		g.health.Set(float64(val))
	case "memberlist.node.instances":
		if state := labelValue(labels, "node_state"); state != "" {
			g.nodes.WithLabelValues(state).Set(float64(val))
		}
	}
}

// sink is the process's go-metrics sink: it hands each emission to the
// node its label names and drops the rest.
type sink struct {
	mu    sync.RWMutex
	nodes map[string]*gossip
}

var (
	globalSink  = &sink{nodes: make(map[string]*gossip)}
	installSink sync.Once
	nodeIDs     atomic.Int64
)

func (s *sink) node(labels []gometrics.Label) *gossip {
	id := labelValue(labels, nodeLabel)
	if id == "" {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nodes[id]
}

func labelValue(labels []gometrics.Label, name string) string {
	for _, l := range labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

func (s *sink) SetGauge([]string, float32) {}
func (s *sink) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	if g := s.node(labels); g != nil {
		g.gauge(strings.Join(key, "."), val, labels)
	}
}
func (s *sink) EmitKey([]string, float32)     {}
func (s *sink) IncrCounter([]string, float32) {}
func (s *sink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	if g := s.node(labels); g != nil {
		g.counter(strings.Join(key, "."), val)
	}
}
func (s *sink) AddSample([]string, float32) {}
func (s *sink) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	if g := s.node(labels); g != nil {
		g.sample(strings.Join(key, "."), val)
	}
}

// GossipLabels returns the labels to give memberlist (its
// Config.MetricLabels) so that its metrics reach this node's registry.
// The first call installs the process's go-metrics sink. Nil-safe: a nil
// *Metrics gets nil labels.
func (m *Metrics) GossipLabels() []gometrics.Label {
	if m == nil {
		return nil
	}
	installSink.Do(func() {
		// No hostname or service prefix, no runtime sampler goroutine: only
		// memberlist's own keys, as it names them.
		gometrics.NewGlobal(&gometrics.Config{TimerGranularity: time.Millisecond, FilterDefault: true}, globalSink)
	})
	m.gossipOnce.Do(func() {
		m.gossipID = strconv.FormatInt(nodeIDs.Add(1), 10)
		g := newGossip(m.Registry)
		globalSink.mu.Lock()
		globalSink.nodes[m.gossipID] = g
		globalSink.mu.Unlock()
	})
	// Its own slice, full to capacity: memberlist appends to it.
	return []gometrics.Label{{Name: nodeLabel, Value: m.gossipID}}
}

// Close stops routing gossip metrics to m (its node has stopped).
func (m *Metrics) Close() {
	if m == nil || m.gossipID == "" {
		return
	}
	globalSink.mu.Lock()
	delete(globalSink.nodes, m.gossipID)
	globalSink.mu.Unlock()
}
