package node

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/role"
	"github.com/llmesh/llmesh/pkg/routing"
)

// memberFilter selects /members entries: each non-empty set must contain
// the member's value.
type memberFilter struct {
	roles, hints, states []string
}

// memberStates are the states /members can report.
var memberStates = []string{string(membership.StateAlive), string(membership.StateDead), string(membership.StateLeft)}

// parseMemberFilter reads ?role=, ?hint= and ?state=, each repeated or
// comma-separated. Unknown parameters and values are errors: a typo must
// not pass for an empty mesh.
func parseMemberFilter(q url.Values) (memberFilter, error) {
	var f memberFilter
	for key, values := range q {
		var set *[]string
		var known []string
		switch key {
		case "role":
			set, known = &f.roles, []string{string(role.Ingress), string(role.Egress)}
		case "hint":
			set, known = &f.hints, routing.Hints
		case "state":
			set, known = &f.states, memberStates
		default:
			return memberFilter{}, fmt.Errorf("unknown parameter %q: /members filters by role, hint and state", key)
		}
		for _, v := range values {
			for item := range strings.SplitSeq(v, ",") {
				item = strings.TrimSpace(item)
				if !slices.Contains(known, item) {
					return memberFilter{}, fmt.Errorf("%s %q is not one of %s", key, item, strings.Join(known, ", "))
				}
				*set = append(*set, item)
			}
		}
	}
	return f, nil
}

func (f memberFilter) match(m membership.Member) bool {
	in := func(set []string, v string) bool { return len(set) == 0 || slices.Contains(set, v) }
	return in(f.roles, string(m.Role)) && in(f.hints, m.Hint) && in(f.states, string(m.State))
}

// localInfo is the envelope of /members: this node's load and rules.
func (n *Node) localInfo() *LocalInfo {
	info := &LocalInfo{Name: n.cfg.Node.Name, InFlight: n.inFlight()}
	if n.cfg.Role != role.Ingress {
		return info
	}
	rc := n.live.Load().Routing // as the last reload left it
	ri := &RoutingInfo{Rules: []RuleInfo{}, Fallback: rc.Fallback, AllowClientHint: rc.AllowClientHint, OnRegionBlock: rc.OnRegionBlock}
	for _, r := range rc.Rules {
		ri.Rules = append(ri.Rules, RuleInfo{Locs: slices.Clone(r.Locs), Hint: r.Hint})
	}
	info.Routing = ri
	return info
}

// inFlight is the node's load: proxied requests on an ingress, tunnel
// streams on an egress.
func (n *Node) inFlight() int64 {
	if n.tunnelSrv != nil {
		return n.tunnelSrv.InFlight()
	}
	return n.proxied.Load()
}

// countProxied counts the requests in flight through h.
func (n *Node) countProxied(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.proxied.Add(1)
		defer n.proxied.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// certCheckInterval is how often a node compares its certificate's expiry
// with the one it gossips (the store reloads renewed files by itself). A
// variable for tests.
var certCheckInterval = 30 * time.Second

// certExpiry is the expiry of the node's own certificate, Unix seconds; 0
// without tunnel.tls.
func (n *Node) certExpiry() int64 {
	if n.tls == nil {
		return 0
	}
	return n.tls.Certificate().Leaf.NotAfter.Unix()
}

// gossipCertExpiry keeps the gossiped expiry current after a renewal. It
// gossips only on a change, so it costs nothing in between.
func (n *Node) gossipCertExpiry(ctx context.Context) {
	sent := n.meta.CertExpiry
	tick := time.NewTicker(certCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		exp := n.certExpiry()
		if exp == sent {
			continue
		}
		if err := n.members.UpdateMeta(func(m *membership.Meta) { m.CertExpiry = exp }, 0); err != nil {
			n.log.Debug("cannot gossip the certificate's new expiry", "err", err)
			continue
		}
		sent = exp
	}
}

// AdminAddr is the bound admin listener's address ("" without admin.listen).
func (n *Node) AdminAddr() string {
	if n.adminLn == nil {
		return ""
	}
	return n.adminLn.Addr().String()
}
