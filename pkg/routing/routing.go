package routing

import (
	"errors"
	"fmt"
	"strings"
)

// Fallback says what to do when no live egress has the wanted hint.
type Fallback string

const (
	FallbackFail    Fallback = "fail"    // 503 naming the hint
	FallbackDirect  Fallback = "direct"  // call the provider from here
	FallbackNearest Fallback = "nearest" // the closest hint that has a live egress
)

// Rule sends requests from any of Locs out through the egress pool of Hint.
type Rule struct {
	Locs []string // ISO 3166 alpha-2, upper case
	Hint string
}

// Policy is an ingress's routing configuration.
type Policy struct {
	Loc             string // this node's location
	Rules           []Rule
	Fallback        Fallback
	AllowClientHint bool
}

// Candidate is a live egress node that can take a stream now.
type Candidate struct {
	Name     string
	Hint     string
	InFlight int64
}

// Kind is the outcome of a decision.
type Kind int

const (
	Direct Kind = iota
	Egress
	Unavailable
)

func (k Kind) String() string {
	switch k {
	case Direct:
		return "direct"
	case Egress:
		return "egress"
	}
	return "unavailable"
}

// Reason says why a request took its route, for the access log.
type Reason string

const (
	ReasonRule            Reason = "rule"             // a rule for this node's loc named the hint
	ReasonClient          Reason = "client"           // the client's X-Mesh-Hint named it
	ReasonNoRule          Reason = "no-rule"          // no rule for this loc: direct
	ReasonFallbackDirect  Reason = "fallback-direct"  // the hint had no live egress: direct
	ReasonFallbackNearest Reason = "fallback-nearest" // the hint had no live egress: the nearest that has one
	ReasonRegionBlock     Reason = "region-block"     // the provider refused this node's region
)

// Decision is where one request goes.
type Decision struct {
	Kind   Kind
	Wanted string // hint the rules (or the client) asked for; "" when direct by rule
	Hint   string // hint of the chosen egress (differs from Wanted after a nearest fallback)
	Egress string // chosen egress node name
	Reason Reason // why, for the access log
}

// ErrUnknownHint is returned for a client hint that is not a location hint.
var ErrUnknownHint = errors.New("unknown location hint")

// Hints are the Cloudflare location hints.
var Hints = []string{"wnam", "enam", "weur", "eeur", "apac", "oc", "afr", "sam", "me"}

// nearest lists, for each hint, the others from geographically closest to
// farthest, as Cloudflare places a Durable Object in the next region when the
// hinted one cannot host it.
var nearest = map[string][]string{
	"wnam": {"enam", "sam", "oc", "apac", "weur", "eeur", "me", "afr"},
	"enam": {"wnam", "weur", "sam", "eeur", "afr", "me", "apac", "oc"},
	"weur": {"eeur", "enam", "afr", "me", "wnam", "sam", "apac", "oc"},
	"eeur": {"weur", "me", "afr", "apac", "enam", "wnam", "sam", "oc"},
	"apac": {"oc", "me", "wnam", "eeur", "weur", "afr", "enam", "sam"},
	"oc":   {"apac", "wnam", "sam", "me", "enam", "eeur", "weur", "afr"},
	"afr":  {"me", "weur", "eeur", "sam", "enam", "apac", "wnam", "oc"},
	"sam":  {"enam", "wnam", "weur", "afr", "oc", "eeur", "apac", "me"},
	"me":   {"eeur", "afr", "weur", "apac", "enam", "wnam", "oc", "sam"},
}

// ValidHint reports whether h is a location hint.
func ValidHint(h string) bool {
	_, ok := nearest[h]
	return ok
}

// Picker chooses a live egress of hint for one request, or reports that
// none can take it. The ingress's picker reads an index by hint, so its cost
// does not grow with the mesh; List is one over a fixed list.
type Picker func(hint string) (egress string, ok bool)

// List is a Picker over cs, by the power of two choices; rnd(n) returns a
// number in [0, n).
func List(cs []Candidate, rnd func(int) int) Picker {
	return func(hint string) (string, bool) { return pick(cs, hint, rnd) }
}

// Decide routes one request. clientHint is the X-Mesh-Hint header (ignored
// unless AllowClientHint); choose picks among the live egress nodes of a hint.
func (p *Policy) Decide(clientHint string, choose Picker) (Decision, error) {
	var d Decision
	switch {
	case p.AllowClientHint && clientHint != "":
		h := strings.ToLower(strings.TrimSpace(clientHint))
		if !ValidHint(h) {
			return Decision{}, fmt.Errorf("%w %q (want one of %s)", ErrUnknownHint, clientHint, strings.Join(Hints, ", "))
		}
		d.Wanted, d.Reason = h, ReasonClient
	default:
		d.Wanted = p.RuleHint()
		d.Reason = ReasonRule
	}
	if d.Wanted == "" {
		return Decision{Kind: Direct, Reason: ReasonNoRule}, nil
	}
	if name, ok := choose(d.Wanted); ok {
		d.Kind, d.Hint, d.Egress = Egress, d.Wanted, name
		return d, nil
	}
	switch p.Fallback {
	case FallbackDirect:
		d.Kind, d.Reason = Direct, ReasonFallbackDirect
		return d, nil
	case FallbackNearest:
		for _, h := range nearest[d.Wanted] {
			if name, ok := choose(h); ok {
				d.Kind, d.Hint, d.Egress, d.Reason = Egress, h, name, ReasonFallbackNearest
				return d, nil
			}
		}
	}
	d.Kind = Unavailable
	return d, nil
}

// RuleHint is the hint the rules name for this node's location, or "".
func (p *Policy) RuleHint() string {
	for _, r := range p.Rules {
		for _, loc := range r.Locs {
			if strings.EqualFold(loc, p.Loc) {
				return r.Hint
			}
		}
	}
	return ""
}

// pick chooses among the candidates of hint by the power of two choices:
// two at random, the less loaded wins. It spreads load like least-in-flight
// without herding every ingress onto the same momentarily idle egress.
// Decide picks with it; so does an ingress that reroutes a region refusal.
func pick(cs []Candidate, hint string, rnd func(int) int) (string, bool) {
	var first, second *Candidate
	n := 0
	for i := range cs {
		if cs[i].Hint != hint {
			continue
		}
		n++
		// Reservoir sampling of two distinct candidates in one pass.
		c := &cs[i]
		switch {
		case n == 1:
			first = c
		case n == 2:
			second = c
		default:
			if j := rnd(n); j == 0 {
				first = c
			} else if j == 1 {
				second = c
			}
		}
	}
	switch {
	case first == nil:
		return "", false
	case second == nil:
		return first.Name, true
	}
	if rnd(2) == 1 {
		first, second = second, first
	}
	if second.InFlight < first.InFlight {
		return second.Name, true
	}
	return first.Name, true
}
