package node

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/routing"
)

// router routes an ingress's requests with its policy over the live egress
// nodes that gossip reports and the tunnel pool can reach. It sees the node
// only through egress and conn, so it is tested alone.
type router struct {
	// egress returns the alive, not draining egress nodes gossip knows.
	egress func() []membership.Member
	// conn returns this ingress's connection to the named egress.
	conn   func(name string) (egressConn, bool)
	log    *slog.Logger
	now    func() time.Time
	rnd    func(n int) int
	policy routing.Policy
	// plaintext: neither tunnel.tls nor tunnel.insecure, so nothing may be
	// tunnelled (provider keys would cross the network in clear).
	plaintext bool
	// regionHint and regionTTL: where and for how long a provider's region
	// refusal sends its requests (routing.on_region_block).
	regionHint string
	regionTTL  time.Duration
	blocked    sync.Map // provider name -> time.Time until which it refuses this region
}

// egressConn is what the router needs of a tunnel connection (*tunnel.Conn).
type egressConn interface {
	http.RoundTripper
	Usable() bool
	InFlight() int64
}

// newRouter returns the router of node n's ingress.
func newRouter(n *Node) *router {
	cfg := n.cfg
	return &router{
		egress: func() []membership.Member { return n.members.Snapshot().Egress("") },
		conn: func(name string) (egressConn, bool) {
			if c, ok := n.pool.Get(name); ok {
				return c, true
			}
			return nil, false
		},
		log:        n.log,
		now:        time.Now,
		rnd:        rand.IntN,
		policy:     policyFrom(cfg),
		plaintext:  n.tls == nil && !cfg.Tunnel.Insecure,
		regionHint: cfg.Routing.OnRegionBlock,
		regionTTL:  cfg.Routing.RegionBlockTTL,
	}
}

// routes reports whether this ingress can ever send a request to an egress.
func (rt *router) routes() bool {
	return len(rt.policy.Rules) > 0 || rt.policy.AllowClientHint || rt.regionHint != ""
}

// candidates are the live, usable egress nodes, less those in exclude.
func (rt *router) candidates(exclude []string) []routing.Candidate {
	var cands []routing.Candidate
	for _, m := range rt.egress() {
		if slices.Contains(exclude, m.Name) {
			continue
		}
		if c, ok := rt.conn(m.Name); ok && c.Usable() {
			cands = append(cands, routing.Candidate{Name: m.Name, Hint: m.Hint, InFlight: c.InFlight()})
		}
	}
	return cands
}

func (rt *router) Route(r *http.Request, p *provider.Provider) (proxy.Target, error) {
	var cands []routing.Candidate
	if rt.routes() {
		cands = rt.candidates(nil)
	}
	d, err := rt.policy.Decide(r.Header.Get(proxy.HeaderHint), cands, rt.rnd)
	if err != nil {
		return proxy.Target{}, &provider.Error{Status: http.StatusBadRequest, Code: "bad_hint", Message: err.Error()}
	}
	if d.Kind == routing.Direct && rt.refusesRegion(p.Name) {
		if t, ok := rt.regionTarget(cands); ok {
			return t, nil
		}
	}
	return rt.target(d)
}

// Retry picks another target after an egress did not take the request:
// the same policy over the egress nodes not tried yet.
func (rt *router) Retry(r *http.Request, p *provider.Provider, tried []string) (proxy.Target, bool) {
	d, err := rt.policy.Decide(r.Header.Get(proxy.HeaderHint), rt.candidates(tried), rt.rnd)
	if err != nil {
		return proxy.Target{}, false
	}
	if d.Kind == routing.Direct && rt.refusesRegion(p.Name) {
		return proxy.Target{}, false
	}
	t, err := rt.target(d)
	return t, err == nil
}

// RegionRefused remembers that p refused this node's region and returns an
// egress of the rerouting pool.
func (rt *router) RegionRefused(r *http.Request, p *provider.Provider) (proxy.Target, bool) {
	if rt.regionHint == "" || rt.plaintext {
		return proxy.Target{}, false
	}
	rt.blocked.Store(p.Name, rt.now().Add(rt.regionTTL))
	rt.log.Warn("provider refuses this node's region: sending its requests through the egress pool",
		"provider", p.Name, "hint", rt.regionHint, "for", rt.regionTTL)
	return rt.regionTarget(rt.candidates(nil))
}

// refusesRegion reports whether provider name refused this node's region
// within routing.region_block_ttl.
func (rt *router) refusesRegion(name string) bool {
	if rt.regionHint == "" {
		return false
	}
	until, ok := rt.blocked.Load(name)
	if !ok {
		return false
	}
	if rt.now().After(until.(time.Time)) {
		rt.blocked.Delete(name)
		return false
	}
	return true
}

func (rt *router) regionTarget(cands []routing.Candidate) (proxy.Target, bool) {
	name, ok := routing.Pick(cands, rt.regionHint, rt.rnd)
	if !ok {
		return proxy.Target{}, false
	}
	c, ok := rt.conn(name)
	if !ok {
		return proxy.Target{}, false
	}
	return proxy.Target{Transport: c, Tunnel: true, Route: proxy.RouteEgress, Egress: name, Hint: rt.regionHint, Reroute: routing.ReasonRegionBlock, Reason: routing.ReasonRegionBlock}, true
}

func (rt *router) target(d routing.Decision) (proxy.Target, error) {
	// Whether or not an egress looked usable: a plaintext ingress cannot
	// reach a mutual-TLS egress (so none looks usable), and must not reach
	// any other. Saying no_egress would send the operator to debug gossip.
	if d.Kind != routing.Direct && rt.plaintext {
		return proxy.Target{}, &provider.Error{Status: http.StatusBadGateway, Code: "tunnel_insecure",
			Message: "this ingress has neither tunnel.tls nor tunnel.insecure: true, so it will not tunnel requests in plaintext"}
	}
	switch d.Kind {
	case routing.Egress:
		if c, ok := rt.conn(d.Egress); ok {
			return proxy.Target{Transport: c, Tunnel: true, Route: proxy.RouteEgress, Egress: d.Egress, Hint: d.Hint, Reason: d.Reason}, nil
		}
	case routing.Direct:
		return proxy.Target{Route: proxy.RouteDirect, Reason: d.Reason}, nil
	}
	return proxy.Target{}, &provider.Error{Status: http.StatusServiceUnavailable, Code: "no_egress",
		Message: "no live egress node for location hint " + strconv.Quote(d.Wanted) + " (routing.fallback: " + string(rt.policy.Fallback) + ")"}
}
