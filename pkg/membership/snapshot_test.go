package membership

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestSnapshotFilters(t *testing.T) {
	s := &Snapshot{Members: []Member{
		{Name: "a-ingress", State: StateAlive, Meta: Meta{Role: "ingress", Hint: "apac"}},
		{Name: "b-egress-apac", State: StateAlive, Meta: Meta{Role: "egress", Hint: "apac"}},
		{Name: "c-egress-wnam", State: StateAlive, Meta: Meta{Role: "egress", Hint: "wnam"}},
		{Name: "d-egress-draining", State: StateAlive, Meta: Meta{Role: "egress", Hint: "wnam", Draining: true}},
		{Name: "e-egress-dead", State: StateDead, Meta: Meta{Role: "egress", Hint: "wnam"}},
		{Name: "f-egress-left", State: StateLeft, Meta: Meta{Role: "egress", Hint: "apac"}},
		{Name: "g-bad-meta", State: StateAlive},
		{Name: "h-egress-suspect", State: State("suspect"), Meta: Meta{Role: "egress", Hint: "apac"}},
	}}
	tests := []struct {
		name string
		got  []Member
		want []string
	}{
		{"alive", s.Alive(), []string{"a-ingress", "b-egress-apac", "c-egress-wnam", "d-egress-draining", "g-bad-meta"}},
		{"egress any hint", s.Egress(""), []string{"b-egress-apac", "c-egress-wnam"}},
		{"egress apac", s.Egress("apac"), []string{"b-egress-apac"}},
		{"egress wnam", s.Egress("wnam"), []string{"c-egress-wnam"}},
		{"egress unknown hint", s.Egress("afr"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(tt.got); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, m := range s.Members {
		if got, ok := s.Get(m.Name); !ok || got != m {
			t.Errorf("Get(%q) = %+v, %v", m.Name, got, ok)
		}
	}
	for _, name := range []string{"", "a", "zzz", "c-egress"} {
		if got, ok := s.Get(name); ok {
			t.Errorf("Get(%q) = %+v, want none", name, got)
		}
	}
	if got := (&Snapshot{}).Alive(); got != nil {
		t.Errorf("empty Alive() = %v", got)
	}
}

func node(t *testing.T, name, addr string, meta Meta, leaving bool) *memberlist.Node {
	t.Helper()
	b, err := meta.encode(leaving)
	if err != nil {
		t.Fatal(err)
	}
	return nodeRaw(t, name, addr, b)
}

func nodeRaw(t *testing.T, name, addr string, meta []byte) *memberlist.Node {
	t.Helper()
	host, port, err := splitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return &memberlist.Node{Name: name, Addr: net.ParseIP(host), Port: uint16(port), Meta: meta}
}

func TestRegistry(t *testing.T) {
	egress := Meta{Role: "egress", Hint: "apac", Tunnel: "10.0.0.2:9443"}
	r := newRegistry()
	r.NotifyJoin(node(t, "b", "10.0.0.2:7946", egress, false))
	r.NotifyJoin(node(t, "a", "10.0.0.1:7946", Meta{Role: "ingress"}, false))
	r.NotifyJoin(node(t, "c", "10.0.0.3:7946", egress, false))
	r.NotifyJoin(nodeRaw(t, "d", "10.0.0.4:7946", []byte("garbage")))
	select {
	case <-r.changed:
	default:
		t.Fatal("no change signalled")
	}

	now := time.Now()
	s, bad := r.snapshot(now, time.Minute)
	if got := names(s.Members); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("members = %v, want sorted a b c d", got)
	}
	if b, _ := s.Get("b"); b.Addr != "10.0.0.2:7946" || b.Meta != egress || b.State != StateAlive {
		t.Errorf("b = %+v", b)
	}
	if d, _ := s.Get("d"); d.State != StateAlive || d.Role != "" {
		t.Errorf("undecodable d = %+v, want listed alive without role", d)
	}
	if len(bad) != 1 || bad[0].name != "d" {
		t.Errorf("bad = %v, want d once", bad)
	}
	if _, bad := r.snapshot(now, time.Minute); len(bad) != 0 {
		t.Errorf("bad reported again: %v", bad)
	}
	if got := names(s.Egress("apac")); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Egress = %v", got)
	}

	// b announces its departure, then leaves; c crashes.
	r.NotifyUpdate(node(t, "b", "10.0.0.2:7946", egress, true))
	s, _ = r.snapshot(now, time.Minute)
	if b, _ := s.Get("b"); b.State != StateAlive || !b.Draining {
		t.Errorf("leaving b = %+v, want alive and draining", b)
	}
	r.NotifyLeave(node(t, "b", "10.0.0.2:7946", egress, true))
	r.NotifyLeave(node(t, "c", "10.0.0.3:7946", egress, false))
	s, _ = r.snapshot(time.Now(), time.Minute)
	if b, _ := s.Get("b"); b.State != StateLeft {
		t.Errorf("b = %+v, want left", b)
	}
	if c, _ := s.Get("c"); c.State != StateDead {
		t.Errorf("c = %+v, want dead", c)
	}
	if got := names(s.Egress("")); got != nil {
		t.Errorf("Egress = %v, want none", got)
	}

	// A node that left is forgotten after a minute, a dead one after
	// forget (here two minutes).
	s, _ = r.snapshot(time.Now().Add(forgetLeftAfter+time.Second), 2*time.Minute)
	if got := names(s.Members); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Errorf("members a minute on = %v, want a c d (left b forgotten, dead c kept)", got)
	}
	r.NotifyLeave(node(t, "b", "10.0.0.2:7946", egress, true))

	// c comes back; b is forgotten after a while, alive nodes never are.
	r.NotifyJoin(node(t, "c", "10.0.0.33:7946", egress, false))
	s, _ = r.snapshot(time.Now().Add(2*time.Minute), time.Minute)
	if got := names(s.Members); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Errorf("members = %v, want a c d", got)
	}
	if c, _ := s.Get("c"); c.State != StateAlive || c.Addr != "10.0.0.33:7946" {
		t.Errorf("rejoined c = %+v", c)
	}
}

func TestSeedAddr(t *testing.T) {
	tests := []struct{ seed, want string }{
		{"127.0.0.1:7946", "127.0.0.1:7946"},
		{"127.0.0.1", "127.0.0.1:9000"},
		{"node-a/127.0.0.1:7000", "127.0.0.1:7000"},
		{"[::1]:7946", "[::1]:7946"},
		{"::1", "[::1]:9000"},
		{"[::1]", "[::1]:9000"},
		{"seed.example.com:7946", ""},
	}
	for _, tt := range tests {
		if got := seedAddr(tt.seed, 9000); got != tt.want {
			t.Errorf("seedAddr(%q) = %q, want %q", tt.seed, got, tt.want)
		}
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if got := jitter(time.Second); got < 750*time.Millisecond || got > 1250*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", got)
		}
	}
}
