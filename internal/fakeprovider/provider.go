package fakeprovider

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Request is what the fake saw of one request.
type Request struct {
	Method     string
	Host       string
	Path       string // r.URL.Path as received
	RawQuery   string
	Header     http.Header // clone
	BodyBytes  int64
	BodySHA256 string // hex
}

// Stats counts requests since [New] or the last [Provider.Reset].
type Stats struct {
	Requests int // requests received (any path)
	Active   int // handlers currently running
	Canceled int // handlers that saw their request context end before they finished writing
}

// Provider is the fake provider. It is an [http.Handler], safe for
// concurrent use. The zero value is not usable; call [New].
type Provider struct {
	regionBlocked atomic.Bool

	mu       sync.Mutex
	requests []Request
	stats    Stats
	seq      uint64 // for response ids
}

// New returns a Provider that has seen nothing yet.
func New() *Provider { return &Provider{} }

// ServeHTTP answers r as the provider its path names. It records r (after
// reading its body) before it answers anything.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.begin()
	defer p.end()

	rt := match(r.URL.Path)
	x := &exchange{p: p, w: w, r: r, rc: http.NewResponseController(w)}
	err := x.readBody(rt.json)
	p.record(r, x.bodyBytes, x.bodySHA256)
	if err != nil {
		x.fail(rt.dialect, err)
		return
	}
	if p.regionBlocked.Load() {
		rt.dialect.refuseRegion(w)
		return
	}
	rt.serve(x)
}

// SetRegionBlocked makes every route answer with the provider's refusal of
// the caller's region, as the real APIs do from unsupported countries
// (after recording the request).
func (p *Provider) SetRegionBlocked(v bool) { p.regionBlocked.Store(v) }

// Requests returns a copy of the recorded requests, in arrival order.
func (p *Provider) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.requests))
	for i, r := range p.requests {
		r.Header = r.Header.Clone()
		out[i] = r
	}
	return out
}

// Stats returns the current counters.
func (p *Provider) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Reset forgets recorded requests and zeroes Requests and Canceled. Active
// is left alone: it counts handlers that are still running.
func (p *Provider) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
	p.stats = Stats{Active: p.stats.Active}
}

func (p *Provider) begin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	p.stats.Active++
}

func (p *Provider) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Active--
}

func (p *Provider) canceled() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Canceled++
}

func (p *Provider) record(r *http.Request, n int64, sum string) {
	rec := Request{
		Method:     r.Method,
		Host:       r.Host,
		Path:       r.URL.Path,
		RawQuery:   r.URL.RawQuery,
		Header:     r.Header.Clone(),
		BodyBytes:  n,
		BodySHA256: sum,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, rec)
}

// nextID returns prefix followed by a number unique to this Provider.
func (p *Provider) nextID(prefix string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	return prefix + strconv.FormatUint(p.seq, 10)
}
