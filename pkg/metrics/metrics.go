package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one node's metric set. A nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inflight      *prometheus.GaugeVec
	tunnelStreams *prometheus.CounterVec
	members       *prometheus.GaugeVec
	replayBytes   prometheus.Gauge
}

// New registers the metric set of a node with the given role and version.
func New(role, version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_requests_total",
			Help: "Proxied requests by provider, route (direct, egress, relay) and HTTP status code.",
		}, []string{"provider", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmesh_request_duration_seconds",
			Help:    "Time from request to the end of the response body, by provider and route.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"provider", "route"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmesh_requests_in_flight",
			Help: "Proxied requests being served, by route.",
		}, []string{"route"}),
		tunnelStreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_tunnel_streams_total",
			Help: "Tunnel streams served by this egress, by gRPC status code.",
		}, []string{"code"}),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmesh_members",
			Help: "Mesh members this node sees, by role and state.",
		}, []string{"role", "state"}),
		replayBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmesh_replay_bytes",
			Help: "Memory reserved for request bodies kept for a retry (routing.retry_body_budget).",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "llmesh_build_info",
		Help:        "Always 1; labels say what runs.",
		ConstLabels: prometheus.Labels{"role": role, "version": version},
	})
	build.Set(1)
	reg.MustRegister(m.requests, m.duration, m.inflight, m.tunnelStreams, m.members, m.replayBytes, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Begin counts a request in flight on route; call the returned func when it ends.
func (m *Metrics) Begin(route string) func() {
	if m == nil {
		return func() {}
	}
	g := m.inflight.WithLabelValues(route)
	g.Inc()
	return g.Dec
}

// Observe records one finished request.
func (m *Metrics) Observe(provider, route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(provider, route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(provider, route).Observe(d.Seconds())
}

// TunnelStream records how one tunnel stream ended.
func (m *Metrics) TunnelStream(code string) {
	if m == nil {
		return
	}
	m.tunnelStreams.WithLabelValues(code).Inc()
}

// SetMembers replaces the membership gauge with counts[role][state].
func (m *Metrics) SetMembers(counts map[[2]string]int) {
	if m == nil {
		return
	}
	m.members.Reset()
	for k, n := range counts {
		m.members.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
}

// AddReplayBytes changes the memory reserved for bodies kept for a retry.
func (m *Metrics) AddReplayBytes(delta int64) {
	if m == nil {
		return
	}
	m.replayBytes.Add(float64(delta))
}
