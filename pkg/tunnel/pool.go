package tunnel

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/connectivity"
)

// Endpoint is an egress node the pool should hold a connection to.
type Endpoint struct {
	Name string
	Addr string
	Hint string // as gossip claims it; with mutual TLS the certificate must agree
	// Start changes each time the egress process starts (membership.Meta):
	// a new one means the old process, and every connection to it, is gone,
	// even when nothing said so (a crash, a restart faster than gossip).
	Start string
	// Draining: keep the connection for the streams it serves, but pick it
	// for no new request.
	Draining bool
	// Lazy: connect on the first Pick of its hint, not now (a hint this
	// ingress routes to only by fallback or a client's choice).
	Lazy bool
}

// sameConn reports whether a connection dialled for e serves o too.
func (e Endpoint) sameConn(o Endpoint) bool {
	return e.Name == o.Name && e.Addr == o.Addr && e.Hint == o.Hint && e.Start == o.Start
}

// Pool holds one long-lived connection per egress node, opened when the node
// joins the mesh (or, for a lazy endpoint, when its hint is first picked)
// and retired (closed once idle) when it leaves.
type Pool struct {
	cfg   DialConfig
	log   *slog.Logger
	mu    sync.Mutex
	conns map[string]*Conn
	// byHint indexes the connections new requests may use, rebuilt by
	// each Sync and read without a lock by Pick.
	byHint atomic.Pointer[map[string]*hintConns]
}

// hintConns are the connections to the egress nodes of one hint.
type hintConns struct {
	conns []*Conn
	warm  atomic.Bool // Pick has connected them
}

// warmUp connects the hint's lazy connections, once per index.
func (h *hintConns) warmUp() {
	if h.warm.Load() || !h.warm.CompareAndSwap(false, true) {
		return
	}
	for _, c := range h.conns {
		c.cc.Connect() // a no-op on a connection already up
	}
}

// NewPool returns an empty pool.
func NewPool(cfg DialConfig) *Pool {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pool{cfg: cfg, log: log, conns: make(map[string]*Conn)}
}

// Sync makes the pool hold exactly the given endpoints: it dials new ones,
// redials those whose address changed or whose process restarted, and
// retires the rest.
func (p *Pool) Sync(eps []Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make(map[string]Endpoint, len(eps))
	for _, ep := range eps {
		want[ep.Name] = ep
	}
	for name, c := range p.conns {
		if ep, ok := want[name]; !ok || !ep.sameConn(c.endpoint) {
			p.log.Info("tunnel: retiring egress connection", "egress", name, "addr", c.Addr)
			c.retire()
			delete(p.conns, name)
		}
	}
	for name, ep := range want {
		if c, ok := p.conns[name]; ok {
			// Gossip says the egress is alive: a connection waiting out its
			// reconnect backoff tries again now.
			c.resetBulkBackoff()
			switch c.cc.GetState() {
			case connectivity.TransientFailure:
				c.cc.ResetConnectBackoff()
			case connectivity.Idle:
				if !ep.Lazy {
					c.cc.Connect()
				}
			}
			continue
		}
		if ep.Addr == "" {
			continue
		}
		cfg := p.cfg
		if cfg.TLSFor != nil {
			cfg.TLS = cfg.TLSFor(ep)
		}
		c, err := dial(name, ep.Addr, cfg, !ep.Lazy)
		if err != nil {
			p.log.Warn("tunnel: cannot dial egress", "egress", name, "addr", ep.Addr, "err", err)
			continue
		}
		c.endpoint = ep
		c.elsewhere = func() bool { return p.usableBesides(ep.Hint, c) }
		p.log.Info("tunnel: connecting to egress", "egress", name, "addr", ep.Addr)
		p.conns[name] = c
	}
	byHint := make(map[string]*hintConns)
	for name, ep := range want {
		c, ok := p.conns[name]
		if !ok || ep.Draining {
			continue
		}
		h := byHint[ep.Hint]
		if h == nil {
			h = &hintConns{}
			byHint[ep.Hint] = h
		}
		h.conns = append(h.conns, c)
	}
	p.byHint.Store(&byHint)
}

// Pick chooses a connection to an egress of hint, none of exclude, for a
// new request, by the power of two choices: two at random, a ready one over
// one still connecting, else the one with fewer exchanges in flight. It
// reads an index built by Sync, without locks: its cost does not grow with
// the mesh, only with the unusable connections it steps over.
func (p *Pool) Pick(hint string, exclude []string, rnd func(int) int) (*Conn, bool) {
	idx := p.byHint.Load()
	if idx == nil {
		return nil, false
	}
	h := (*idx)[hint]
	if h == nil {
		return nil, false
	}
	h.warmUp()
	conns, n := h.conns, len(h.conns)
	// Two different places to start from, so that two usable connections
	// are two choices.
	i := rnd(n)
	a := usableFrom(conns, i, exclude, nil)
	if a == nil {
		return nil, false
	}
	b := a
	if n > 1 {
		b = usableFrom(conns, i+1+rnd(n-1), exclude, a)
	}
	if b == nil || b == a {
		return a, true
	}
	if ra, rb := a.ready(), b.ready(); ra != rb {
		if rb {
			a.wake()
			return b, true
		}
		b.wake()
		return a, true
	}
	if b.InFlight() < a.InFlight() {
		return b, true
	}
	return a, true
}

// usableBesides reports whether a connection of hint other than c is
// usable, so an exchange c's egress did not accept in time can move.
func (p *Pool) usableBesides(hint string, c *Conn) bool {
	idx := p.byHint.Load()
	if idx == nil {
		return false
	}
	h := (*idx)[hint]
	return h != nil && usableFrom(h.conns, 0, nil, c) != nil
}

// usableFrom returns the first usable connection of conns from index start
// on (wrapping), none of exclude and not skip.
func usableFrom(conns []*Conn, start int, exclude []string, skip *Conn) *Conn {
	n := len(conns)
	for i := range n {
		c := conns[(start+i)%n]
		if c != skip && c.Usable() && !slices.Contains(exclude, c.Name) {
			return c
		}
	}
	return nil
}

// InFlight is the number of exchanges open on all of the pool's connections.
func (p *Pool) InFlight() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, c := range p.conns {
		n += c.InFlight()
	}
	return n
}

// Get returns the connection to the named egress.
func (p *Pool) Get(name string) (*Conn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.conns[name]
	return c, ok
}

// Close closes every connection now.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, c := range p.conns {
		c.Close()
		delete(p.conns, name)
	}
}
