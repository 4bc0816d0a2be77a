package node

import (
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/routing"
)

// router routes an ingress's requests with its policy over the live egress
// nodes that gossip reports and the tunnel pool can reach.
type router struct {
	node   *Node
	policy routing.Policy
	// plaintext: neither tunnel.tls nor tunnel.insecure, so nothing may be
	// tunnelled (provider keys would cross the network in clear).
	plaintext bool
}

// routes reports whether this ingress can ever send a request to an egress.
func (rt *router) routes() bool {
	return len(rt.policy.Rules) > 0 || rt.policy.AllowClientHint
}

func (rt *router) Route(r *http.Request, p *provider.Provider) (proxy.Target, error) {
	n := rt.node
	var cands []routing.Candidate
	if rt.routes() {
		for _, m := range n.members.Snapshot().Egress("") {
			if c, ok := n.pool.Get(m.Name); ok && c.Usable() {
				cands = append(cands, routing.Candidate{Name: m.Name, Hint: m.Hint, InFlight: c.InFlight()})
			}
		}
	}
	d, err := rt.policy.Decide(r.Header.Get(proxy.HeaderHint), cands, rand.IntN)
	if err != nil {
		return proxy.Target{}, &provider.Error{Status: http.StatusBadRequest, Code: "bad_hint", Message: err.Error()}
	}
	switch d.Kind {
	case routing.Egress:
		if rt.plaintext {
			return proxy.Target{}, &provider.Error{Status: http.StatusBadGateway, Code: "tunnel_insecure",
				Message: "this ingress has neither tunnel.tls nor tunnel.insecure: true, so it will not tunnel requests in plaintext"}
		}
		if c, ok := n.pool.Get(d.Egress); ok {
			return proxy.Target{Transport: c, Tunnel: true, Route: "egress", Egress: d.Egress, Hint: d.Hint}, nil
		}
	case routing.Direct:
		return proxy.Target{Route: "direct"}, nil
	}
	return proxy.Target{}, &provider.Error{Status: http.StatusServiceUnavailable, Code: "no_egress",
		Message: "no live egress node for location hint " + strconv.Quote(d.Wanted) + " (routing.fallback: " + string(rt.policy.Fallback) + ")"}
}
