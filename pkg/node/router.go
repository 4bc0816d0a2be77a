package node

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/routing"
)

// router routes an ingress's requests with its policy over the live egress
// nodes that gossip reports and the tunnel pool can reach. It sees the node
// only through pick, so it is tested alone.
type router struct {
	// pick chooses a usable connection to a live, not draining egress of
	// hint, none of exclude (tunnel.Pool.Pick).
	pick func(hint string, exclude []string) (name string, c http.RoundTripper, ok bool)
	// noEgress, when set, is told of each pick that found no egress of hint.
	noEgress func(hint string)
	log      *slog.Logger
	now      func() time.Time
	policy   routing.Policy
	// plaintext: neither tunnel.tls nor tunnel.insecure, so nothing may be
	// tunnelled (provider keys would cross the network in clear).
	plaintext bool
	// regionHint and regionTTL: where and for how long a provider's region
	// refusal sends its requests (routing.on_region_block).
	regionHint string
	regionTTL  time.Duration
	// blocked maps a provider name to the time.Time until which it refuses
	// this region. The node's: it outlives a reload's new router.
	blocked *sync.Map
}

// newRouter returns the router of node n's ingress under cfg: a new one
// for each config, all sharing the node's memory of region refusals.
func newRouter(n *Node, cfg *config.Runtime) *router {
	return &router{
		pick: func(hint string, exclude []string) (string, http.RoundTripper, bool) {
			if c, ok := n.pool.Pick(hint, exclude, rand.IntN); ok {
				return c.Name, c, true
			}
			return "", nil, false
		},
		noEgress:   n.metrics.NoEgress,
		log:        n.log,
		now:        time.Now,
		policy:     policyFrom(cfg),
		plaintext:  n.tls == nil && !cfg.Tunnel.Insecure,
		regionHint: cfg.Routing.OnRegionBlock,
		regionTTL:  cfg.Routing.RegionBlockTTL,
		blocked:    &n.blocked,
	}
}

// routes reports whether this ingress can ever send a request to an egress.
func (rt *router) routes() bool {
	return len(rt.policy.Rules) > 0 || rt.policy.AllowClientHint || rt.regionHint != ""
}

// eager reports whether requests go to egress nodes of hint without a
// fallback or a client's choice: the rules' hint for this location, or the
// region-block pool. Connections to the other hints' nodes wait for their
// first use, so an ingress does not hold one to every egress of the mesh.
func (rt *router) eager(hint string) bool {
	return hint != "" && (hint == rt.policy.RuleHint() || hint == rt.regionHint)
}

// picked is the egress a routing.Picker chose, for the target. Decide
// stops at the first pick that succeeds, so there is at most one.
type picked struct {
	name string
	conn http.RoundTripper
}

// picker lets the policy choose among the egress nodes not in exclude, and
// remembers the connections it chose.
func (rt *router) picker(exclude []string, chosen *picked) routing.Picker {
	return func(hint string) (string, bool) {
		name, c, ok := rt.pick(hint, exclude)
		if ok {
			*chosen = picked{name: name, conn: c}
		} else if rt.noEgress != nil {
			rt.noEgress(hint)
		}
		return name, ok
	}
}

func (rt *router) Route(r *http.Request, p *provider.Provider) (proxy.Target, error) {
	var chosen picked
	d, err := rt.policy.Decide(r.Header.Get(proxy.HeaderHint), rt.picker(nil, &chosen))
	if err != nil {
		return proxy.Target{}, &provider.Error{Status: http.StatusBadRequest, Code: "bad_hint", Message: err.Error()}
	}
	if d.Kind == routing.Direct && rt.refusesRegion(p.Name) {
		if t, ok := rt.regionTarget(nil); ok {
			return t, nil
		}
	}
	return rt.target(d, &chosen)
}

// Retry picks another target after an egress did not take the request:
// the same policy over the egress nodes not tried yet.
func (rt *router) Retry(r *http.Request, p *provider.Provider, tried []string) (proxy.Target, bool) {
	var chosen picked
	d, err := rt.policy.Decide(r.Header.Get(proxy.HeaderHint), rt.picker(tried, &chosen))
	if err != nil {
		return proxy.Target{}, false
	}
	if d.Kind == routing.Direct && rt.refusesRegion(p.Name) {
		return proxy.Target{}, false
	}
	t, err := rt.target(d, &chosen)
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
	return rt.regionTarget(nil)
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

func (rt *router) regionTarget(exclude []string) (proxy.Target, bool) {
	name, c, ok := rt.pick(rt.regionHint, exclude)
	if !ok {
		return proxy.Target{}, false
	}
	return proxy.Target{Transport: c, Tunnel: true, Route: proxy.RouteEgress, Egress: name, Hint: rt.regionHint,
		Reroute: routing.ReasonRegionBlock, Reason: routing.ReasonRegionBlock}, true
}

func (rt *router) target(d routing.Decision, chosen *picked) (proxy.Target, error) {
	// Whether or not an egress looked usable: a plaintext ingress cannot
	// reach a mutual-TLS egress (so none looks usable), and must not reach
	// any other. Saying no_egress would send the operator to debug gossip.
	if d.Kind != routing.Direct && rt.plaintext {
		return proxy.Target{}, &provider.Error{Status: http.StatusBadGateway, Code: "tunnel_insecure",
			Message: "this ingress has neither tunnel.tls nor tunnel.insecure: true, so it will not tunnel requests in plaintext"}
	}
	switch d.Kind {
	case routing.Egress:
		if c := chosen.conn; c != nil && chosen.name == d.Egress {
			return proxy.Target{Transport: c, Tunnel: true, Route: proxy.RouteEgress, Egress: d.Egress, Hint: d.Hint, Reason: d.Reason}, nil
		}
	case routing.Direct:
		return proxy.Target{Route: proxy.RouteDirect, Reason: d.Reason}, nil
	}
	return proxy.Target{}, &provider.Error{Status: http.StatusServiceUnavailable, Code: "no_egress",
		Message: "no live egress node for location hint " + strconv.Quote(d.Wanted) + " (routing.fallback: " + string(rt.policy.Fallback) + ")"}
}
