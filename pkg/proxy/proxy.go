package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/routing"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// Response headers that tell a client how the mesh served its request.
const (
	HeaderRoute     = "X-Mesh-Route"  // direct | egress
	HeaderEgress    = "X-Mesh-Egress" // egress node name
	HeaderHint      = "X-Mesh-Hint"   // hint of the egress pool (also a request header, see routing)
	HeaderRequestID = "X-Mesh-Request-Id"
	HeaderError     = "X-Mesh-Error"   // code of an error the mesh itself produced
	HeaderReroute   = "X-Mesh-Reroute" // why the request left its normal route
)

// Route is how a request reached its provider: the X-Mesh-Route value and
// the route label of the request metrics and log.
type Route string

const (
	RouteDirect   Route = "direct"   // this node called the provider
	RouteEgress   Route = "egress"   // through the tunnel, from an egress
	RouteRelay    Route = "relay"    // an egress serving a tunnelled request (metrics only)
	RouteRejected Route = "rejected" // refused before it was sent anywhere (metrics only)
)

// Target is where one request goes.
type Target struct {
	// Transport carries the exchange; nil means the direct transport.
	Transport http.RoundTripper
	// Tunnel makes the upstream URL llmesh://{provider}/{path}: the egress
	// resolves the provider itself, the tunnel never carries a real URL.
	Tunnel bool
	// Route is the X-Mesh-Route value and metrics label; "" sets no X-Mesh
	// headers (an egress serving a tunnelled request).
	Route  Route
	Egress string
	Hint   string
	// Reroute, when set, is the X-Mesh-Reroute value: why this request did
	// not take its normal route ("region-block").
	Reroute routing.Reason
	// Reason says why the router chose this target, for the access log.
	Reason routing.Reason
}

// Router picks the Target of a request. It returns a *provider.Error to
// refuse the request (say, 503 when no egress serves the wanted hint).
type Router interface {
	Route(r *http.Request, p *provider.Provider) (Target, error)
}

// Retrier is a Router that also knows where to send a request again.
type Retrier interface {
	// Retry returns another target for a request that an egress did not
	// take (nothing reached the provider); tried names the egress nodes
	// already tried. false: give up.
	Retry(r *http.Request, p *provider.Provider, tried []string) (Target, bool)
	// RegionRefused records that p refused this node's region and returns
	// the egress pool to retry through. false: no rerouting configured.
	RegionRefused(r *http.Request, p *provider.Provider) (Target, bool)
}

// Config configures a Handler.
type Config struct {
	Providers *provider.Registry
	Router    Router            // nil: always direct
	Transport http.RoundTripper // the direct transport, see NewTransport
	Metrics   *metrics.Metrics  // may be nil
	Logger    *slog.Logger
	// Tracer, when set, gives each request a span (see trace.go); nil
	// costs nothing.
	Tracer trace.Tracer
	// MetricsRoute labels requests when the Router sets no Route ("relay" on an egress).
	MetricsRoute Route
	// AccessKeys are the keys clients of managed providers must present (ingress).
	AccessKeys []AccessKey
	// Relay marks the egress side: it serves requests an ingress already
	// admitted, and injects the provider key when the tunnel asks for it.
	Relay bool
	// MaxInFlight caps proxied requests in flight; more get 503 at once. 0 = no cap.
	MaxInFlight int
	// MaxInFlightPerClient caps proxied requests in flight per client
	// address (IPv6: per /64); more get 429 at once. 0 = no cap.
	MaxInFlightPerClient int
	// BodyIdleTimeout: a request body that sends nothing for this long is
	// cut (408 request_body_timeout). 0 = no body timeouts at all.
	BodyIdleTimeout time.Duration
	// MinBodyRate: after BodyIdleTimeout of grace, a request body must
	// average this many bytes per second of waiting for it. 0 = no rate.
	MinBodyRate int64
	// MaxHeaderBytes: a request head (request line and headers) larger than
	// this gets 431 in the provider's error shape. 0 = no check. Go's server
	// answers heads beyond its own MaxHeaderBytes with a plain-text 431
	// before any handler runs, so the node sets that one higher.
	MaxHeaderBytes int
	// RetryBodyBytes: request bodies up to this size are kept so the request
	// can be sent again (failover, region-block rerouting). 0 = never retry.
	RetryBodyBytes int64
	// RetryBodyBudget bounds the memory of all kept bodies together; past
	// it, bodies stream without being kept (and are not retried). 0 = no bound.
	RetryBodyBudget int64
	// RegionReroute: retry a region refusal on the direct path through the
	// pool the Retrier names.
	RegionReroute bool
	// SSEKeepalive, when positive, writes an SSE comment to the client after
	// this much silence on an event stream.
	SSEKeepalive time.Duration
}

// maxAttempts bounds how many egress nodes one request may try.
const maxAttempts = 3

// Handler serves /{provider}/{rest}.
type Handler struct {
	// cfg is the config New got: its Metrics, Tracer, Logger, MetricsRoute,
	// Relay and RetryBodyBudget never change. live is the config in force,
	// loaded once per request, which keeps it to its end: a Reconfigure
	// applies to the requests that start after it.
	cfg      Config
	live     atomic.Pointer[Config]
	log      *slog.Logger
	rp       *httputil.ReverseProxy
	inflight atomic.Int64
	clients  clientLimit
	replay   replayBudget
}

// New returns a proxy handler.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MetricsRoute == "" {
		cfg.MetricsRoute = RouteDirect
	}
	h := &Handler{cfg: cfg, log: cfg.Logger}
	h.live.Store(&cfg)
	h.replay.limit, h.replay.metrics = cfg.RetryBodyBudget, cfg.Metrics
	h.rp = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      roundTripperFunc(h.roundTrip),
		ModifyResponse: modifyResponse,
		ErrorHandler:   h.handleError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return h
}

// Reconfigure makes the requests that start from now on use cfg; those in
// flight finish with the config they started with. The counts of requests
// in flight carry over to the new limits. Metrics, Tracer, Logger,
// MetricsRoute, Relay and RetryBodyBudget stay as New set them.
func (h *Handler) Reconfigure(cfg Config) {
	cfg.Metrics, cfg.Tracer, cfg.Logger, cfg.MetricsRoute = h.cfg.Metrics, h.cfg.Tracer, h.cfg.Logger, h.cfg.MetricsRoute
	cfg.Relay, cfg.RetryBodyBudget = h.cfg.Relay, h.cfg.RetryBodyBudget
	h.live.Store(&cfg)
}

// exchange is what the handler learned about a request, carried in its
// context to the ReverseProxy hooks.
type exchange struct {
	cfg       *Config // the handler's live config when the request started
	provider  *provider.Provider
	rest      provider.Path
	target    Target
	injectKey bool          // strip the client's credentials, put the provider key in
	status    *statusWriter // the client's response, for statuses never sent (499)
	attempts  int           // round trips tried
	tried     []string      // egress nodes that did not take the request
	body      *pacedBody    // the client's body under its pace; nil without one
	replay    *replayBody   // the body kept for another try; nil: sent once
	// nextHopWait is how long the last attempt that got a response head
	// waited for it (from the egress or the provider); 0: none did.
	nextHopWait time.Duration
	// rp is the handler's ReverseProxy with this exchange's buffers, sized
	// by the response (in the exchange's allocation, not one of its own).
	rp      httputil.ReverseProxy
	buffers exchangeBuffers
	// noTrace is the first try's context, without the ReverseProxy's
	// ClientTrace (see try), in the exchange's allocation.
	noTrace withoutClientTrace
}

type exchangeKey struct{}

// served is the state of one served request that lives as long as the
// handler: one allocation rather than one per part.
type served struct {
	sw   statusWriter
	body pacedBody
}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := tunnel.RequestID(r.Context())
	if id == "" {
		id = newRequestID()
	}
	st := &served{sw: statusWriter{ResponseWriter: w}}
	sw := &st.sw
	sw.Header()[HeaderRequestID] = []string{id} // canonical already
	cfg := h.live.Load()
	var span trace.Span
	if h.cfg.Tracer != nil {
		r, span = h.startSpan(r)
	}
	name, route := "", h.cfg.MetricsRoute
	var ex *exchange
	var body *pacedBody
	// Deferred, so an aborted stream (panic(http.ErrAbortHandler)) is
	// logged and counted too.
	defer func() {
		// The target that served the request: after a failover or a
		// region-block reroute, not the first one tried.
		chosen := ex.chosen()
		if chosen.Route != "" && route != RouteRejected {
			route = chosen.Route
		}
		total := time.Since(start)
		h.observe(name, route, chosen, measure(start, total, sw, ex, body, r))
		traceID := ""
		if span != nil {
			traceID = span.SpanContext().TraceID().String()
			endSpan(span, name, route, chosen, ex.tries(), sw.code())
		}
		h.logRequest(r, id, name, route, chosen, ex.tries(), sw, total, traceID)
	}()

	body = paceBody(&st.body, w, r, pace{idle: cfg.BodyIdleTimeout, minRate: cfg.MinBodyRate})
	if body != nil {
		// Deferred first so it runs last, once the request's slots are
		// free: on HTTP/1 it bounds what the server reads of a body left
		// unread (a refused request, say) by the body's pace.
		defer body.Close()
	}
	// Counted with or without a cap, so that a reload that sets one
	// counts the requests already in flight.
	defer h.inflight.Add(-1)
	if n, max := h.inflight.Add(1), cfg.MaxInFlight; max > 0 && n > int64(max) {
		route = RouteRejected
		(&provider.Error{Status: http.StatusServiceUnavailable, Code: "over_capacity",
			Message: "this node is at its limit of " + strconv.Itoa(max) + " requests in flight; retry shortly"}).Write(sw, cfg.styleOf(r))
		return
	}
	release, ok := h.clients.acquire(r.RemoteAddr, cfg.MaxInFlightPerClient)
	if !ok {
		route = RouteRejected
		clientRefusal(cfg.MaxInFlightPerClient).Write(sw, cfg.styleOf(r))
		return
	}
	defer release()
	ex, perr := h.admit(cfg, r)
	if ex != nil {
		name = ex.provider.Name
		ex.body = body
	}
	if perr != nil {
		route = RouteRejected
		perr.Write(sw, cfg.styleOf(r))
		return
	}
	if ex.target.Route != "" {
		route = ex.target.Route
	}
	if h.retries(ex) {
		// Kept while it streams, for another try; released at the end.
		if ex.replay = keepWhileStreaming(r, cfg.RetryBodyBytes, &h.replay); ex.replay != nil {
			defer ex.replay.close()
		}
	}
	ex.status = sw
	inflight := h.cfg.Metrics.Series(name, string(route), ex.target.Egress)
	inflight.Begin()
	defer inflight.End()

	ctx := tunnel.WithRequestID(r.Context(), id)
	if ex.injectKey {
		ctx = tunnel.WithInjectKey(ctx)
	}
	if span != nil && !h.cfg.Relay {
		ctx = tunnel.WithTraceContext(ctx, traceContextOf(ctx))
	}
	var out http.ResponseWriter = sw
	if cfg.SSEKeepalive > 0 && !h.cfg.Relay {
		kw := newKeepaliveWriter(sw, cfg.SSEKeepalive)
		defer kw.stop()
		out = kw
	}
	// HTTP/1: keep reading the request body after the response head has
	// gone out (golang/go#40747); a no-op elsewhere.
	if http.NewResponseController(out).EnableFullDuplex() == nil && r.Body != nil {
		// A failed round trip may leave the body unread; closing it stops
		// the server from reading the next request over it
		// (golang/go#68560: "invalid concurrent Body.Read call").
		defer r.Body.Close()
	}
	req := r.WithContext(context.WithValue(ctx, exchangeKey{}, ex))
	if h.cfg.Relay {
		h.relay(out, req)
		return
	}
	ex.rp = *h.rp
	ex.rp.BufferPool = &ex.buffers
	ex.rp.ServeHTTP(out, req)
}

// logRequest writes the access-log line of a request: typed attributes,
// built only when the line is written (no boxing of each value, no
// per-request slice of them when the level is above info).
// traceID, when not empty, is the request's trace.
func (h *Handler) logRequest(r *http.Request, id, name string, route Route, chosen Target, attempts int, sw *statusWriter, took time.Duration, traceID string) {
	ctx := r.Context()
	if !h.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("id", clip(id)), slog.String("method", clip(r.Method)), slog.String("provider", name),
		slog.String("route", string(route)), slog.String("egress", chosen.Egress), slog.String("reason", string(chosen.Reason)),
		slog.Int("attempts", attempts), slog.Int("status", sw.code()), slog.Int64("bytes", sw.bytes),
		slog.Duration("duration", took.Round(time.Millisecond)), slog.String("trace_id", traceID),
	}
	n := len(attrs)
	if traceID == "" {
		n-- // no trace: no field
	}
	h.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs[:n]...)
}

// chosen is the target that served the request (the last one tried);
// zero before admission.
func (ex *exchange) chosen() Target {
	if ex == nil {
		return Target{}
	}
	return ex.target
}

// tries is the number of round trips made for the request.
func (ex *exchange) tries() int {
	if ex == nil {
		return 0
	}
	return ex.attempts
}

// maxLoggedField bounds a client-supplied string in a log line or an error
// message: the client, not the operator, would choose its size.
const maxLoggedField = 64

// clip shortens s to maxLoggedField bytes, saying how long it was.
func clip(s string) string {
	if len(s) <= maxLoggedField {
		return s
	}
	return s[:maxLoggedField] + "...(" + strconv.Itoa(len(s)) + " bytes)"
}

// styleOf is the error shape for r: its provider's, even when the request
// is malformed, else OpenAI's.
func (c *Config) styleOf(r *http.Request) provider.Style {
	name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if p, ok := c.Providers.Get(name); ok {
		return p.Style
	}
	return provider.StyleOpenAI
}

// admit validates r and routes it. Every refusal is a *provider.Error.
func (h *Handler) admit(cfg *Config, r *http.Request) (*exchange, *provider.Error) {
	// The head's size first: everything after may quote part of it.
	if max := cfg.MaxHeaderBytes; max > 0 && headSize(r) > max {
		return nil, &provider.Error{Status: http.StatusRequestHeaderFieldsTooLarge, Code: "header_too_large",
			Message: "request headers exceed the limit of " + strconv.Itoa(max) + " bytes"}
	}
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
	default:
		return nil, &provider.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "method " + strconv.Quote(clip(r.Method)) + " is not allowed"}
	}
	// Go's ReverseProxy would switch protocols on a 101, but the tunnel
	// carries HTTP exchanges, not raw connections: say so rather than strip
	// Upgrade and leave the provider to answer a plain GET.
	if wantsWebSocket(r.Header) {
		return nil, &provider.Error{Status: http.StatusNotImplemented, Code: "websocket_not_supported",
			Message: "WebSocket upgrades (such as the Realtime API) are not proxied by this mesh; use the HTTP endpoints"}
	}
	if r.URL.Scheme != "" || r.URL.Host != "" || r.URL.Opaque != "" || r.RequestURI == "*" {
		return nil, &provider.Error{Status: http.StatusBadRequest, Code: "bad_request_target", Message: "absolute-form request targets are not accepted"}
	}
	name, rest, err := provider.SplitPath(r.URL.EscapedPath())
	if err != nil {
		var pe *provider.PathError
		errors.As(err, &pe)
		return nil, &provider.Error{Status: http.StatusBadRequest, Code: "bad_path", Message: "malformed path: " + pe.Reason}
	}
	if !validQuery(r.URL.RawQuery) {
		return nil, &provider.Error{Status: http.StatusBadRequest, Code: "bad_query", Message: "control characters or spaces in the query"}
	}
	p, ok := cfg.Providers.Get(name)
	if !ok {
		return nil, &provider.Error{Status: http.StatusNotFound, Code: "unknown_provider",
			Message: "unknown provider " + strconv.Quote(clip(name)) + "; this mesh serves " + strings.Join(cfg.Providers.Names(), ", ")}
	}
	ex := &exchange{cfg: cfg, provider: p, rest: rest}
	if perr := h.authorize(r, ex); perr != nil {
		return ex, perr
	}
	if p.MaxBodyBytes > 0 {
		if r.ContentLength > p.MaxBodyBytes {
			return ex, tooLarge(p.MaxBodyBytes)
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(nil, r.Body, p.MaxBodyBytes)
		}
	}
	if cfg.Router != nil {
		t, err := cfg.Router.Route(r, p)
		if err != nil {
			var pe *provider.Error
			if !errors.As(err, &pe) {
				pe = &provider.Error{Status: http.StatusInternalServerError, Code: "routing_error", Message: err.Error()}
			}
			return ex, pe
		}
		ex.target = t
	}
	if ex.injectKey && !ex.target.Tunnel && p.APIKey == "" {
		return ex, &provider.Error{Status: http.StatusBadGateway, Code: "no_provider_key",
			Message: "this node holds no api_key for provider " + strconv.Quote(p.Name)}
	}
	return ex, nil
}

// authorize applies key management: for a managed provider the client must
// present one of the access keys (401 missing, 403 wrong or not granting
// this provider), and the real key is injected on the node that calls the
// provider. On an egress the tunnel says whether the ingress asked for that.
func (h *Handler) authorize(r *http.Request, ex *exchange) *provider.Error {
	p := ex.provider
	if h.cfg.Relay {
		ex.injectKey = tunnel.InjectKey(r.Context())
		return nil
	}
	if !p.Managed {
		return nil
	}
	key, ok := provider.ClientKey(p.Style, r.Header, r.URL.RawQuery)
	if !ok {
		return &provider.Error{Status: http.StatusUnauthorized, Code: "missing_access_key",
			Message: "this mesh needs an access key for " + p.Name + ": send it as " + provider.KeySlot(p.Style)}
	}
	valid, granted := 0, 0
	for _, k := range ex.cfg.AccessKeys {
		// Compare with every key, in constant time, and look at every key's
		// grant: no timing tells which key matched.
		match := subtle.ConstantTimeCompare([]byte(key), []byte(k.Key))
		valid |= match
		granted |= match & k.grants(p.Name)
	}
	switch {
	case valid != 1:
		return &provider.Error{Status: http.StatusForbidden, Code: "invalid_access_key",
			Message: "the access key is not valid for this mesh"}
	case granted != 1:
		return &provider.Error{Status: http.StatusForbidden, Code: "access_key_not_allowed",
			Message: "this access key does not grant provider " + p.Name}
	}
	ex.injectKey = true
	return nil
}

// AccessKey is a key clients of managed providers present, and the
// providers it grants.
type AccessKey struct {
	Key       string
	Providers []string // nil: every managed provider
}

// grants is 1 when k may be used for the named provider, else 0.
func (k AccessKey) grants(name string) int {
	if k.Providers == nil || slices.Contains(k.Providers, name) {
		return 1
	}
	return 0
}

// wantsWebSocket reports whether an Upgrade header asks for websocket.
func wantsWebSocket(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		for proto := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(proto), "/")
			if strings.EqualFold(name, "websocket") {
				return true
			}
		}
	}
	return false
}

// headSize is the size of r's head as HTTP/1.1 sends it: request line,
// Host and every header line.
func headSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	n += len("Host: ") + len(r.Host) + 2
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}

func tooLarge(limit int64) *provider.Error {
	return &provider.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
		Message: "request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes"}
}

func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// retries reports whether ex may be sent more than once, so its body must
// be kept.
func (h *Handler) retries(ex *exchange) bool {
	if _, ok := ex.cfg.Router.(Retrier); !ok || ex.cfg.RetryBodyBytes <= 0 {
		return false
	}
	return ex.target.Tunnel || ex.cfg.RegionReroute && ex.target.Route == RouteDirect
}

// roundTrip sends the request to its target and, while nothing has reached
// the provider, to other targets: an egress that refused the stream or
// could not be reached is retried elsewhere, and a provider's region refusal
// on the direct path is retried through the rerouting pool. A request whose
// body was not kept is never sent twice.
func (h *Handler) roundTrip(req *http.Request) (*http.Response, error) {
	ex := exchangeFrom(req.Context())
	for {
		ex.attempts++
		out := h.try(req, ex)
		next, ok := h.nextTarget(req, ex, out)
		if !ok {
			return out.resp, out.err
		}
		// Replay before discarding: when the body cannot be sent again, the
		// answer already in hand is the client's.
		again, ok := replay(req, ex, next)
		if !ok {
			return out.resp, out.err
		}
		h.countRetry(out)
		out.discard()
		ex.target, req = next, again
	}
}

// outcome is what one attempt returned.
type outcome struct {
	resp *http.Response
	err  error
	// regionRefused: the provider refused this node's region, read from the
	// start of resp's body (which still reads whole).
	regionRefused bool
}

func (o outcome) discard() {
	if o.resp != nil {
		o.resp.Body.Close()
	}
}

// errUnexpectedUpgrade answers a 101 to a request that asked for no upgrade
// (the mesh forwards none): passed on, it would turn the client's connection
// into a raw byte pipe.
var errUnexpectedUpgrade = errors.New("the upstream switched protocols unasked")

// try sends req to ex.target once.
func (h *Handler) try(req *http.Request, ex *exchange) outcome {
	// The mesh drops 1xx responses on both paths (the tunnel never carries
	// them): forwarded by the ReverseProxy, a 103's headers would reach the
	// client unfiltered and the mesh's own headers would be cleared with them.
	if !h.cfg.Relay { // the relay installs no trace
		if ex.attempts == 1 {
			ex.noTrace = withoutClientTrace{req.Context()}
			req = req.WithContext(&ex.noTrace)
		} else { // a retry, while the first try's transport may still read its own
			req = req.WithContext(withoutClientTrace{req.Context()})
		}
	}
	// The next hop's wait includes sending it the body (see measure), and
	// so reading a small one whole first.
	sent := time.Now()
	if !ex.target.Tunnel { // the tunnel reads a small body whole itself
		if err := readSmallBody(req); err != nil {
			return outcome{err: err}
		}
	}
	resp, err := ex.cfg.transport(ex.target).RoundTrip(req)
	if err != nil {
		return outcome{err: err}
	}
	ex.nextHopWait = time.Since(sent)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body.Close()
		return outcome{err: errUnexpectedUpgrade}
	}
	if ex.cfg.RegionReroute && ex.target.Route == RouteDirect {
		refused, resp := peekRegionRefusal(resp, ex.provider)
		return outcome{resp: resp, regionRefused: refused}
	}
	return outcome{resp: resp}
}

// SmallBody is the largest request body of known length that is read whole
// before its round trip. In memory, it leaves with its head: in one write to
// the provider (Go's transport flushes a head alone before a body it cannot
// tell is in memory, golang/go#22088), and in one frame through the tunnel,
// with no goroutine to stream it.
const SmallBody = tunnel.WholeBody

// readSmallBody puts req's body in memory when it is small, of known length,
// and not already there. req is the try's own shallow copy; its body, read to
// its end, stays consumed (a later try reads the kept copy, see replay).
func readSmallBody(req *http.Request) error {
	n := req.ContentLength
	if n <= 0 || n > SmallBody || req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	// Read to its end: the server then sees the body complete (Go's HTTP/1
	// server watches the connection for a hang-up, the body's pace stops).
	body, err := tunnel.ReadWhole(req.Body, n)
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// nextTarget decides whether and where a request goes again after out:
// only when the provider certainly did not take it (an egress did not
// accept the stream) or refused this node's region, within maxAttempts, and
// while the client is still waiting.
func (h *Handler) nextTarget(req *http.Request, ex *exchange, out outcome) (Target, bool) {
	retrier, _ := ex.cfg.Router.(Retrier)
	if retrier == nil || ex.attempts >= maxAttempts || req.Context().Err() != nil {
		return Target{}, false
	}
	id := tunnel.RequestID(req.Context())
	var ns *tunnel.NotSentError
	switch {
	case errors.As(out.err, &ns):
		ex.tried = append(ex.tried, ns.Egress)
		next, ok := retrier.Retry(req, ex.provider, ex.tried)
		if ok {
			h.log.Info("retrying elsewhere: the egress did not take the request", "id", id,
				"failed", ns.Egress, "next", next.Egress, "route", next.Route, "err", scrub(out.err))
		}
		return next, ok
	case out.regionRefused:
		next, ok := retrier.RegionRefused(req, ex.provider)
		if ok {
			h.log.Info("provider refused this region: rerouting", "id", id,
				"provider", ex.provider.Name, "hint", next.Hint, "egress", next.Egress)
		}
		return next, ok
	}
	return Target{}, false
}

// withoutClientTrace hides any httptrace.ClientTrace from the transport; see try.
type withoutClientTrace struct{ context.Context }

func (c withoutClientTrace) Value(key any) any {
	v := c.Context.Value(key)
	if _, ok := v.(*httptrace.ClientTrace); ok {
		return nil
	}
	return v
}

func (c *Config) transport(t Target) http.RoundTripper {
	if t.Transport != nil {
		return t.Transport
	}
	return c.Transport
}

// replay prepares req to be sent again to next, from its kept body.
func replay(req *http.Request, ex *exchange, next Target) (*http.Request, bool) {
	out := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, false
		}
		body, err := req.GetBody()
		if err != nil {
			return nil, false
		}
		out.Body = body
	}
	if ex.injectKey && !next.Tunnel && ex.provider.APIKey == "" {
		return nil, false // no key here to inject: the tunnel's error stands
	}
	out.URL = upstreamURL(ex, next, req.URL.RawQuery)
	if ex.injectKey {
		// The real key never crosses the tunnel; on the direct path it is ours.
		provider.StripCredentials(out.Header, "")
		if !next.Tunnel {
			ex.provider.Inject(out.Header)
		}
	}
	return out, true
}

func upstreamURL(ex *exchange, t Target, rawQuery string) *url.URL {
	if t.Tunnel {
		return &url.URL{Scheme: tunnel.Scheme, Host: ex.provider.Name,
			Path: ex.rest.Path, RawPath: ex.rest.RawPath, RawQuery: rawQuery}
	}
	return ex.provider.URL(ex.rest, rawQuery)
}

// regionProbeBytes bounds how much of an error body is read to recognise a
// region refusal.
const regionProbeBytes = 64 << 10

// peekRegionRefusal reads the start of a 400 or 403 response and reports
// whether it is a region refusal. The returned response reads the same bytes.
func peekRegionRefusal(resp *http.Response, p *provider.Provider) (bool, *http.Response) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		return false, resp
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, regionProbeBytes))
	body := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), errReader{err}, body), body}
	return err == nil && p.RefusesRegion(resp.StatusCode, head), resp
}

// errReader replays a read error after the bytes that came before it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// rewrite builds the upstream request from configured parts only.
func rewrite(pr *httputil.ProxyRequest) { rewriteRequest(pr.Out, pr.In) }

// rewriteRequest makes out, a copy of in (or in itself, see relay), the
// upstream request.
func rewriteRequest(out, in *http.Request) {
	ex := exchangeFrom(in.Context())
	out.URL = upstreamURL(ex, ex.target, in.URL.RawQuery)
	out.Host = ""
	provider.CleanRequestHeader(out.Header)
	if ex.injectKey {
		out.URL.RawQuery = provider.StripCredentials(out.Header, out.URL.RawQuery)
		if !ex.target.Tunnel {
			ex.provider.Inject(out.Header)
		}
	}
}

func modifyResponse(resp *http.Response) error {
	h := resp.Header
	ex := exchangeFrom(resp.Request.Context())
	// An egress's own error code is the mesh speaking; a provider's is not.
	meshErr := h.Get(HeaderError)
	provider.CleanResponseHeader(h)
	if ex != nil && ex.target.Tunnel && meshErr != "" {
		h.Set(HeaderError, meshErr)
	}
	// CORS is the mesh's: a provider's own would duplicate or contradict it.
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	if ex != nil {
		setRouteHeaders(h, ex.target)
		ex.buffers.contentLength = resp.ContentLength
	}
	if ct := h.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		h.Set("X-Accel-Buffering", "no") // an nginx in front must not buffer SSE
	}
	return nil
}

func setRouteHeaders(h http.Header, t Target) {
	if t.Route == "" {
		return
	}
	h.Set(HeaderRoute, string(t.Route))
	if t.Egress != "" {
		h.Set(HeaderEgress, t.Egress)
		h.Set(HeaderHint, t.Hint)
	}
	if t.Reroute != "" {
		h.Set(HeaderReroute, string(t.Reroute))
	}
}

// handleError answers a round trip that failed before any response byte.
func (h *Handler) handleError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeFrom(r.Context())
	// A stalled body ends the request's context too (HTTP/1), but the
	// client is still there to hear why.
	if cut := ex.body.timedOut(); cut != nil {
		err = cut
	} else if r.Context().Err() != nil && errors.Is(context.Cause(r.Context()), context.Canceled) {
		// The client went away: nobody is left to read an answer.
		h.log.Debug("client canceled", "id", tunnel.RequestID(r.Context()), "provider", ex.provider.Name)
		ex.status.status = StatusClientClosed
		return
	}
	pe := classify(err)
	h.log.Warn("upstream failed", "id", tunnel.RequestID(r.Context()), "provider", ex.provider.Name,
		"egress", ex.target.Egress, "status", pe.Status, "err", scrub(err))
	setRouteHeaders(w.Header(), ex.target)
	pe.Write(w, ex.provider.Style)
}

// StatusClientClosed is recorded (never sent) when the client hung up first.
const StatusClientClosed = 499

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
