package tunnel

import (
	"log/slog"
	"sync"

	"google.golang.org/grpc/connectivity"
)

// Endpoint is an egress node the pool should hold a connection to.
type Endpoint struct {
	Name string
	Addr string
	Hint string // as gossip claims it; with mutual TLS the certificate must agree
}

// Pool holds one long-lived connection per egress node, opened when the node
// joins the mesh and retired (closed once idle) when it leaves.
type Pool struct {
	cfg   DialConfig
	log   *slog.Logger
	mu    sync.Mutex
	conns map[string]*Conn
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
// redials those whose address changed and retires the rest.
func (p *Pool) Sync(eps []Endpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := make(map[string]Endpoint, len(eps))
	for _, ep := range eps {
		want[ep.Name] = ep
	}
	for name, c := range p.conns {
		if ep, ok := want[name]; !ok || ep != c.endpoint {
			p.log.Info("tunnel: retiring egress connection", "egress", name, "addr", c.Addr)
			c.retire()
			delete(p.conns, name)
		}
	}
	for name, ep := range want {
		if c, ok := p.conns[name]; ok {
			// Gossip says the egress is alive: a connection waiting out its
			// reconnect backoff (up to 2 minutes) tries again now.
			if c.cc.GetState() == connectivity.TransientFailure {
				c.cc.ResetConnectBackoff()
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
		c, err := Dial(name, ep.Addr, cfg)
		if err != nil {
			p.log.Warn("tunnel: cannot dial egress", "egress", name, "addr", ep.Addr, "err", err)
			continue
		}
		c.endpoint = ep
		p.log.Info("tunnel: connecting to egress", "egress", name, "addr", ep.Addr)
		p.conns[name] = c
	}
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
