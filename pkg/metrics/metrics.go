package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"

	"github.com/llmesh/llmesh/pkg/routing"
)

// Metrics is one node's metric set. A nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	firstByte     *prometheus.HistogramVec
	overhead      *prometheus.HistogramVec
	bytesIn       *prometheus.CounterVec
	bytesOut      *prometheus.CounterVec
	inflight      *prometheus.GaugeVec
	tunnelStreams [codeCount]prometheus.Counter
	retries       *prometheus.CounterVec
	failovers     *prometheus.CounterVec
	reroutes      *prometheus.CounterVec
	ejections     *prometheus.CounterVec
	noEgress      *prometheus.CounterVec
	members       *prometheus.GaugeVec
	memberChanges *prometheus.CounterVec
	replayBytes   prometheus.Gauge
	reloads       *prometheus.CounterVec
	lastReload    prometheus.Gauge

	// series caches the children of each (provider, route, egress), so a
	// request resolves its labels with one map read and no allocation.
	// Copied on write: new series are rare, reads are every request.
	series   atomic.Pointer[map[seriesKey]*Series]
	seriesMu sync.Mutex

	// states remembers each member's last state, for memberChanges.
	statesMu sync.Mutex
	states   map[string]memberKey

	// gossipID names this node's memberlist metrics (see GossipLabels).
	gossipOnce sync.Once
	gossipID   string
}

// Histogram buckets, in seconds. Durations reach the length of a long
// generation; the overhead of the mesh is milliseconds.
var (
	durationBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	overheadBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
)

const codeCount = 17 // gRPC codes OK (0) to Unauthenticated (16)

// New registers the metric set of a node with the given role and version.
func New(role, version string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_requests_total",
			Help: "Requests on provider routes, by provider, route (direct, egress, relay, rejected), egress node and status class (1xx to 5xx).",
		}, []string{"provider", "route", "egress", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmesh_request_duration_seconds",
			Help:    "Time from the request to the end of the response body, by provider and route.",
			Buckets: durationBuckets,
		}, []string{"provider", "route"}),
		firstByte: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmesh_time_to_first_byte_seconds",
			Help:    "Time from the request to the first byte of the response body written to the client, by provider and route.",
			Buckets: durationBuckets,
		}, []string{"provider", "route"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmesh_mesh_overhead_seconds",
			Help:    "This hop's own time before the response head: from the request to the head written to the client, less the time waiting for the next hop's (egress or provider) response head.",
			Buckets: overheadBuckets,
		}, []string{"provider", "route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_request_body_bytes_total",
			Help: "Request body bytes read from clients (on an egress: from the tunnel), by provider and route.",
		}, []string{"provider", "route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_response_body_bytes_total",
			Help: "Response body bytes written to clients (on an egress: into the tunnel), by provider and route.",
		}, []string{"provider", "route"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmesh_requests_in_flight",
			Help: "Proxied requests being served, by route.",
		}, []string{"route"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_retries_total",
			Help: "Requests sent again, by reason: failover (an egress did not take it) or region_block (the provider refused this region).",
		}, []string{"reason"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_failovers_total",
			Help: "Requests sent to another egress because one did not take them, by reason (unavailable, overloaded, unauthenticated, protocol, aborted, deadline, other).",
		}, []string{"reason"}),
		reroutes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_reroutes_total",
			Help: "Requests served off their normal route, by reason: fallback-direct, fallback-nearest, region-block.",
		}, []string{"reason"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_egress_ejections_total",
			Help: "Egress connections ejected from picking for a while after a stream failed before the egress took it, by reason (as llmesh_failovers_total).",
		}, []string{"reason"}),
		noEgress: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_no_egress_total",
			Help: "Picks of an egress of a hint that found no live, usable one.",
		}, []string{"hint"}),
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "llmesh_members",
			Help: "Mesh members this node sees, by role, hint and state (alive, draining, dead, left).",
		}, []string{"role", "hint", "state"}),
		memberChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_member_state_changes_total",
			Help: "Members this node saw enter a state (alive, draining, dead, left), by role and hint.",
		}, []string{"role", "hint", "state"}),
		replayBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmesh_replay_bytes",
			Help: "Memory reserved for request bodies kept for a retry (routing.retry_body_budget).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmesh_config_reloads_total",
			Help: "Reloads (SIGHUP), by result: success or failure (the previous config stays).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "llmesh_config_last_reload_success_timestamp_seconds",
			Help: "When the config was last loaded successfully (start or reload), Unix time.",
		}),
	}
	streams := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llmesh_tunnel_streams_total",
		Help: "Tunnel streams served by this egress, by gRPC status code.",
	}, []string{"code"})
	for c := range m.tunnelStreams {
		m.tunnelStreams[c] = streams.WithLabelValues(codes.Code(c).String())
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "llmesh_build_info",
		Help:        "Always 1; labels say what runs.",
		ConstLabels: prometheus.Labels{"role": role, "version": version},
	})
	build.Set(1)
	m.lastReload.SetToCurrentTime()
	m.zero()
	empty := map[seriesKey]*Series{}
	m.series.Store(&empty)
	reg.MustRegister(m.requests, m.duration, m.firstByte, m.overhead, m.bytesIn, m.bytesOut, m.inflight,
		streams, m.retries, m.failovers, m.reroutes, m.ejections, m.noEgress, m.members, m.memberChanges,
		m.replayBytes, m.reloads, m.lastReload, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Label values known in advance, so that their series exist at 0 from the
// start: an alert on a rate needs the series before the first event.
var (
	retryReasons  = []string{"failover", "region_block"}
	rerouteKinds  = []string{"fallback-direct", "fallback-nearest", "region-block"}
	tunnelReasons = []string{"unauthenticated", "unavailable", "overloaded", "protocol", "aborted", "deadline", "other"}
	reloadResults = []string{"success", "failure"}
)

func (m *Metrics) zero() {
	for _, r := range retryReasons {
		m.retries.WithLabelValues(r)
	}
	for _, r := range rerouteKinds {
		m.reroutes.WithLabelValues(r)
	}
	for _, r := range tunnelReasons {
		m.failovers.WithLabelValues(r)
		m.ejections.WithLabelValues(r)
	}
	for _, r := range reloadResults {
		m.reloads.WithLabelValues(r)
	}
	for _, h := range routing.Hints {
		m.noEgress.WithLabelValues(h)
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

type seriesKey struct{ provider, route, egress string }

// Series holds the metric children of one (provider, route, egress):
// resolved once, so recording a request costs no label lookups.
type Series struct {
	classes   [6]prometheus.Counter // 1xx to 5xx, then anything else
	duration  prometheus.Observer
	firstByte prometheus.Observer
	overhead  prometheus.Observer
	bytesIn   prometheus.Counter
	bytesOut  prometheus.Counter
	inflight  prometheus.Gauge
}

// OtherProvider labels requests whose path names no configured provider
// (and those refused before their path was read): label values come from
// the config, never from clients.
const OtherProvider = "other"

// Series returns the children of (provider, route, egress); nil when m is nil.
func (m *Metrics) Series(provider, route, egress string) *Series {
	if m == nil {
		return nil
	}
	if provider == "" {
		provider = OtherProvider
	}
	k := seriesKey{provider, route, egress}
	if s, ok := (*m.series.Load())[k]; ok {
		return s
	}
	return m.newSeries(k)
}

func (m *Metrics) newSeries(k seriesKey) *Series {
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	old := *m.series.Load()
	if s, ok := old[k]; ok {
		return s
	}
	s := &Series{
		duration:  m.duration.WithLabelValues(k.provider, k.route),
		firstByte: m.firstByte.WithLabelValues(k.provider, k.route),
		overhead:  m.overhead.WithLabelValues(k.provider, k.route),
		bytesIn:   m.bytesIn.WithLabelValues(k.provider, k.route),
		bytesOut:  m.bytesOut.WithLabelValues(k.provider, k.route),
		inflight:  m.inflight.WithLabelValues(k.route),
	}
	for i, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"} {
		s.classes[i] = m.requests.WithLabelValues(k.provider, k.route, k.egress, class)
	}
	next := make(map[seriesKey]*Series, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[k] = s
	m.series.Store(&next)
	return s
}

// Begin counts a request in flight; call End when it ends. Nil-safe.
func (s *Series) Begin() {
	if s != nil {
		s.inflight.Inc()
	}
}

// End uncounts a request Begin counted. Nil-safe.
func (s *Series) End() {
	if s != nil {
		s.inflight.Dec()
	}
}

// Request is what one finished request measured.
type Request struct {
	Code      int
	Total     time.Duration
	FirstByte time.Duration // 0: no byte was written
	Overhead  time.Duration // <0: unknown (the request never got a response head from the next hop)
	BytesIn   int64
	BytesOut  int64
}

// Observe records one finished request. Nil-safe.
func (s *Series) Observe(r Request) {
	if s == nil {
		return
	}
	class := r.Code/100 - 1
	if class < 0 || class > 4 {
		class = 5
	}
	s.classes[class].Inc()
	s.duration.Observe(r.Total.Seconds())
	if r.FirstByte > 0 {
		s.firstByte.Observe(r.FirstByte.Seconds())
	}
	if r.Overhead >= 0 {
		s.overhead.Observe(r.Overhead.Seconds())
	}
	if r.BytesIn > 0 {
		s.bytesIn.Add(float64(r.BytesIn))
	}
	if r.BytesOut > 0 {
		s.bytesOut.Add(float64(r.BytesOut))
	}
}

// TunnelStream records how one tunnel stream ended.
func (m *Metrics) TunnelStream(c codes.Code) {
	if m == nil {
		return
	}
	if int(c) < len(m.tunnelStreams) {
		m.tunnelStreams[c].Inc()
	}
}

// Retry counts a request sent again: reason is "failover" or "region_block".
func (m *Metrics) Retry(reason string) {
	if m != nil {
		m.retries.WithLabelValues(reason).Inc()
	}
}

// Failover counts a request sent to another egress after one did not
// take it, for reason (tunnel.Reason).
func (m *Metrics) Failover(reason string) {
	if m != nil {
		m.failovers.WithLabelValues(reason).Inc()
	}
}

// Reroute counts a request served off its normal route, for reason (a
// routing.Reason such as "fallback-direct").
func (m *Metrics) Reroute(reason string) {
	if m != nil {
		m.reroutes.WithLabelValues(reason).Inc()
	}
}

// Ejection counts an egress connection ejected after a failure, for
// reason (tunnel.Reason).
func (m *Metrics) Ejection(reason string) {
	if m != nil {
		m.ejections.WithLabelValues(reason).Inc()
	}
}

// NoEgress counts a pick that found no usable egress of hint.
func (m *Metrics) NoEgress(hint string) {
	if m != nil {
		m.noEgress.WithLabelValues(Hint(hint)).Inc()
	}
}

// AddReplayBytes changes the memory reserved for bodies kept for a retry.
func (m *Metrics) AddReplayBytes(delta int64) {
	if m == nil {
		return
	}
	m.replayBytes.Add(float64(delta))
}

// ConfigReload records a reload and whether it succeeded; a failed one
// leaves the last success's timestamp alone.
func (m *Metrics) ConfigReload(ok bool) {
	if m == nil {
		return
	}
	if !ok {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.lastReload.SetToCurrentTime()
}

// GaugeFunc registers a gauge whose value is read from f at each scrape:
// what other packages already count (streams in flight) costs nothing more.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	if m != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
}

// Expiry is a certificate's name and end of validity.
type Expiry struct {
	Cert     string // node, ca
	NotAfter time.Time
}

// CertificateExpiry registers llmesh_certificate_expiry_timestamp_seconds,
// read from f at each scrape: a reloaded certificate shows at once.
func (m *Metrics) CertificateExpiry(f func() []Expiry) {
	if m != nil {
		m.Registry.MustRegister(expiryCollector(f))
	}
}

var expiryDesc = prometheus.NewDesc("llmesh_certificate_expiry_timestamp_seconds",
	"When the mesh TLS certificate in use expires (cert: node, ca; the earliest CA certificate), Unix time.",
	[]string{"cert"}, nil)

type expiryCollector func() []Expiry

func (f expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (f expiryCollector) Collect(ch chan<- prometheus.Metric) {
	for _, e := range f() {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(e.NotAfter.Unix()), e.Cert)
	}
}
