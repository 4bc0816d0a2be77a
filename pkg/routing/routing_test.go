package routing

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestDecide(t *testing.T) {
	hk := Policy{Loc: "HK", Rules: []Rule{{Locs: []string{"HK", "CN"}, Hint: "wnam"}}}
	withFallback := func(p Policy, f Fallback) *Policy { p.Fallback = f; return &p }
	clientHints := func(p Policy) *Policy { p.AllowClientHint = true; return &p }
	us := Policy{Loc: "US", Rules: hk.Rules}
	wnam := []Candidate{{Name: "w1", Hint: "wnam"}}
	weur := []Candidate{{Name: "e1", Hint: "weur"}}
	enamWeur := []Candidate{{Name: "e1", Hint: "weur"}, {Name: "n1", Hint: "enam"}}

	tests := []struct {
		name       string
		p          *Policy
		clientHint string
		cands      []Candidate
		want       Decision
		wantErr    error
	}{
		{"no rule matches", &us, "", wnam, Decision{Kind: Direct, Reason: "no-rule"}, nil},
		{"rule matches", &hk, "", wnam, Decision{Kind: Egress, Wanted: "wnam", Hint: "wnam", Egress: "w1", Reason: "rule"}, nil},
		{"loc case-insensitive", &Policy{Loc: "cn", Rules: hk.Rules}, "", wnam, Decision{Kind: Egress, Wanted: "wnam", Hint: "wnam", Egress: "w1", Reason: "rule"}, nil},
		{"none alive, default fail", &hk, "", weur, Decision{Kind: Unavailable, Wanted: "wnam", Reason: "rule"}, nil},
		{"none alive, fail", withFallback(hk, FallbackFail), "", nil, Decision{Kind: Unavailable, Wanted: "wnam", Reason: "rule"}, nil},
		{"none alive, direct", withFallback(hk, FallbackDirect), "", weur, Decision{Kind: Direct, Wanted: "wnam", Reason: "fallback-direct"}, nil},
		{"none alive, nearest picks enam before weur", withFallback(hk, FallbackNearest), "", enamWeur, Decision{Kind: Egress, Wanted: "wnam", Hint: "enam", Egress: "n1", Reason: "fallback-nearest"}, nil},
		{"none alive, nearest, none at all", withFallback(hk, FallbackNearest), "", nil, Decision{Kind: Unavailable, Wanted: "wnam", Reason: "rule"}, nil},
		{"client hint ignored unless allowed", &us, "weur", weur, Decision{Kind: Direct, Reason: "no-rule"}, nil},
		{"client hint honoured", clientHints(us), "WEUR", weur, Decision{Kind: Egress, Wanted: "weur", Hint: "weur", Egress: "e1", Reason: "client"}, nil},
		{"client hint overrides rule", clientHints(hk), "weur", append(wnam, weur...), Decision{Kind: Egress, Wanted: "weur", Hint: "weur", Egress: "e1", Reason: "client"}, nil},
		{"client hint unknown", clientHints(us), "mars", weur, Decision{}, ErrUnknownHint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.p.Decide(tc.clientHint, List(tc.cands, rand.IntN))
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("Decide = %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestPickPrefersLessLoadedAndSpreads(t *testing.T) {
	p := &Policy{Loc: "HK", Rules: []Rule{{Locs: []string{"HK"}, Hint: "wnam"}}}
	busy := []Candidate{{Name: "a", Hint: "wnam", InFlight: 10}, {Name: "b", Hint: "wnam", InFlight: 0}}
	for range 100 {
		d, _ := p.Decide("", List(busy, rand.IntN))
		if d.Egress != "b" {
			t.Fatalf("picked %q over the idle egress", d.Egress)
		}
	}
	idle := []Candidate{{Name: "a", Hint: "wnam"}, {Name: "b", Hint: "wnam"}, {Name: "c", Hint: "wnam"}, {Name: "x", Hint: "weur"}}
	seen := map[string]int{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		d, _ := p.Decide("", List(idle, r.IntN))
		seen[d.Egress]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if seen[n] < 700 {
			t.Errorf("egress %s got %d of 3000 idle picks: %v", n, seen[n], seen)
		}
	}
	if seen["x"] != 0 {
		t.Errorf("picked an egress of another hint: %v", seen)
	}
}

func TestNearestCoversEveryHint(t *testing.T) {
	for _, h := range Hints {
		got := nearest[h]
		if len(got) != len(Hints)-1 {
			t.Fatalf("nearest[%s] = %v", h, got)
		}
		seen := map[string]bool{h: true}
		for _, o := range got {
			if seen[o] || !ValidHint(o) {
				t.Fatalf("nearest[%s] = %v: repeats or unknown", h, got)
			}
			seen[o] = true
		}
	}
}
