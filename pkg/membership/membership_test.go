package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/llmesh/llmesh/internal/wait"
)

// lastOctet hands every node its own loopback address.
var lastOctet atomic.Uint32

func nextIP() string {
	return fmt.Sprintf("127.0.0.%d", 2+lastOctet.Add(1)%250)
}

// fast shortens memberlist's timers so failures are detected in about a
// second, while leaving slack for -race on two cores.
func fast(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 30 * time.Millisecond
	c.PushPullInterval = time.Second
	c.TCPTimeout = 500 * time.Millisecond
	c.GossipToTheDeadTime = 3 * time.Second
}

func testConfig(name string, meta Meta, join ...string) Config {
	return Config{
		Name:           name,
		Bind:           net.JoinHostPort(nextIP(), "0"),
		Join:           join,
		Profile:        "local",
		RejoinInterval: 200 * time.Millisecond,
		Meta:           meta,
		Tune:           fast,
	}
}

func start(t *testing.T, cfg Config) *Membership {
	t.Helper()
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// stateOf returns how m sees the named node ("" if absent).
func stateOf(m *Membership, name string) State {
	mem, _ := m.Snapshot().Get(name)
	return mem.State
}

func aliveNames(m *Membership) []string { return names(m.Snapshot().Alive()) }

func TestConverge(t *testing.T) {
	t.Parallel()
	metas := map[string]Meta{
		"in-1": {Role: "ingress", Loc: "HK", Colo: "HKG", Hint: "apac", Version: "v1"},
		"eg-1": {Role: "egress", Loc: "US", Colo: "SJC", Hint: "wnam", Tunnel: "127.0.0.1:9001", Version: "v1"},
		"eg-2": {Role: "egress", Loc: "US", Colo: "IAD", Hint: "enam", Tunnel: "127.0.0.1:9002", Version: "v1"},
		"eg-3": {Role: "egress", Loc: "DE", Colo: "FRA", Hint: "wnam", Tunnel: "127.0.0.1:9003", Version: "v2"},
	}
	seed := start(t, testConfig("in-1", metas["in-1"]))
	nodes := []*Membership{seed}
	for _, name := range []string{"eg-1", "eg-2", "eg-3"} {
		// Every node lists the seed and itself, as a shared config would.
		nodes = append(nodes, start(t, testConfig(name, metas[name], seed.LocalAddr())))
	}
	want := []string{"eg-1", "eg-2", "eg-3", "in-1"}
	for _, n := range nodes {
		wait.Until(t, 10*time.Second, n.Name()+" to see everyone", func() bool {
			return slices.Equal(aliveNames(n), want)
		})
	}
	for _, n := range nodes {
		for _, peer := range nodes {
			got, ok := n.Snapshot().Get(peer.Name())
			if !ok || got.Meta != metas[peer.Name()] || got.Addr != peer.LocalAddr() || got.State != StateAlive {
				t.Errorf("%s sees %+v, want %s at %s with %+v", n.Name(), got, peer.Name(), peer.LocalAddr(), metas[peer.Name()])
			}
		}
		if got := names(n.Snapshot().Egress("wnam")); !slices.Equal(got, []string{"eg-1", "eg-3"}) {
			t.Errorf("%s: Egress(wnam) = %v", n.Name(), got)
		}
		if got := names(n.Snapshot().Egress("")); !slices.Equal(got, []string{"eg-1", "eg-2", "eg-3"}) {
			t.Errorf("%s: Egress() = %v", n.Name(), got)
		}
	}

	// eg-1 drains: everyone stops offering it.
	draining := metas["eg-1"]
	draining.Draining = true
	if err := nodes[1].SetMeta(draining, 0); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	for _, n := range nodes {
		wait.Until(t, 5*time.Second, n.Name()+" to see eg-1 draining", func() bool {
			return slices.Equal(names(n.Snapshot().Egress("wnam")), []string{"eg-3"})
		})
		if got, _ := n.Snapshot().Get("eg-1"); got.State != StateAlive || got.Meta != draining {
			t.Errorf("%s sees %+v", n.Name(), got)
		}
	}

	// A renewed certificate: UpdateMeta changes its expiry and keeps the
	// draining flag set above.
	if err := nodes[1].UpdateMeta(func(m *Meta) { m.CertExpiry = 1830297600 }, 0); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	renewed := draining
	renewed.CertExpiry = 1830297600
	for _, n := range nodes {
		wait.Until(t, 5*time.Second, n.Name()+" to see eg-1's new expiry", func() bool {
			got, _ := n.Snapshot().Get("eg-1")
			return got.Meta == renewed
		})
	}
}

func TestSetMetaTooLarge(t *testing.T) {
	t.Parallel()
	m := start(t, testConfig("big", Meta{Role: "egress"}))
	huge := Meta{Role: "egress", Tunnel: strings.Repeat("x", 600)}
	if err := m.SetMeta(huge, 0); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("SetMeta(huge) = %v, want ErrMetaTooLarge", err)
	}
	if got, _ := m.Snapshot().Get("big"); got.Meta != (Meta{Role: "egress"}) {
		t.Errorf("local meta changed to %+v", got.Meta)
	}
	cfg := testConfig("big2", huge)
	if m, err := Start(cfg); !errors.Is(err, ErrMetaTooLarge) {
		if m != nil {
			_ = m.Shutdown()
		}
		t.Errorf("Start(huge meta) = %v, want ErrMetaTooLarge", err)
	}
}

func TestLeaveAndCrash(t *testing.T) {
	t.Parallel()
	a := start(t, testConfig("a", Meta{Role: "ingress"}))
	b := start(t, testConfig("b", Meta{Role: "egress"}, a.LocalAddr()))
	c := start(t, testConfig("c", Meta{Role: "egress"}, a.LocalAddr()))
	for _, n := range []*Membership{a, b, c} {
		wait.Until(t, 10*time.Second, n.Name()+" to converge", func() bool {
			return len(aliveNames(n)) == 3
		})
	}

	// b leaves gracefully: peers see it left quickly, not dead.
	begin := time.Now()
	if err := b.Leave(2 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := b.Leave(5 * time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if err := b.SetMeta(Meta{Role: "egress"}, 0); !errors.Is(err, ErrLeft) {
		t.Errorf("SetMeta after Leave = %v, want ErrLeft", err)
	}
	for _, n := range []*Membership{a, c} {
		wait.Until(t, 3*time.Second, n.Name()+" to see b left", func() bool {
			return stateOf(n, "b") == StateLeft
		})
	}
	t.Logf("leave seen after %v", time.Since(begin))
	if err := b.Shutdown(); err != nil {
		t.Errorf("Shutdown after Leave: %v", err)
	}
	if err := b.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := b.Leave(5 * time.Second); !errors.Is(err, ErrStopped) {
		t.Errorf("Leave after Shutdown = %v, want ErrStopped", err)
	}
	if err := b.SetMeta(Meta{}, 0); !errors.Is(err, ErrStopped) {
		t.Errorf("SetMeta after Shutdown = %v, want ErrStopped", err)
	}
	if b.Snapshot() == nil {
		t.Error("Snapshot after Shutdown is nil")
	}

	// c crashes: a sees it dead, and keeps listing b as left.
	begin = time.Now()
	if err := c.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wait.Until(t, 10*time.Second, "a to see c dead", func() bool {
		return stateOf(a, "c") == StateDead
	})
	t.Logf("crash seen after %v", time.Since(begin))
	if got := stateOf(a, "b"); got != StateLeft {
		t.Errorf("b is %q, want left", got)
	}
	if got := a.Snapshot().Egress(""); len(got) != 0 {
		t.Errorf("Egress = %v, want none", names(got))
	}
}

func TestForget(t *testing.T) {
	t.Parallel()
	cfg := testConfig("a", Meta{})
	// Long enough that a poll sees "left" even on a starved CPU, short
	// enough to wait for.
	cfg.forget = 1500 * time.Millisecond
	a := start(t, cfg)
	b := start(t, testConfig("b", Meta{}, a.LocalAddr()))
	wait.Until(t, 10*time.Second, "a to see b", func() bool { return stateOf(a, "b") == StateAlive })
	if err := b.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	_ = b.Shutdown()
	wait.Until(t, 10*time.Second, "a to see b left", func() bool { return stateOf(a, "b") == StateLeft })
	wait.Until(t, 10*time.Second, "a to forget b", func() bool { return stateOf(a, "b") == "" })
	if got := names(a.Snapshot().Members); !slices.Equal(got, []string{"a"}) {
		t.Errorf("members = %v", got)
	}
}

// reservePort finds a free port on ip for both TCP and UDP, for a node that
// must have a known address before it starts.
func reservePort(t *testing.T, ip string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		p, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			p.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

func TestRejoinHeals(t *testing.T) {
	t.Parallel()
	addrA := reservePort(t, nextIP())

	// b starts with a seed that is not up yet: not fatal.
	b := start(t, testConfig("b", Meta{Role: "egress"}, addrA))
	if got := names(b.Snapshot().Members); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("b sees %v before a exists", got)
	}

	// a comes up knowing nobody; b's rejoin loop finds it.
	cfgA := testConfig("a", Meta{Role: "ingress"})
	cfgA.Bind = addrA
	a := start(t, cfgA)
	for _, n := range []*Membership{a, b} {
		wait.Until(t, 10*time.Second, n.Name()+" to see both", func() bool {
			return slices.Equal(aliveNames(n), []string{"a", "b"})
		})
	}

	// a crashes and restarts on the same address, again knowing nobody.
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "b to see a dead", func() bool { return stateOf(b, "a") == StateDead })
	a2 := start(t, cfgA)
	for _, n := range []*Membership{a2, b} {
		wait.Until(t, 10*time.Second, n.Name()+" to see both again", func() bool {
			return slices.Equal(aliveNames(n), []string{"a", "b"})
		})
	}
}

// logRecorder keeps every log record, for tests that check what was said.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}

// matching returns the records at level whose message contains msg, as
// "message attr=value ..." lines.
func (r *logRecorder) matching(level slog.Level, msg string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Level != level || !strings.Contains(rec.Message, msg) {
			continue
		}
		line := rec.Message
		rec.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
		out = append(out, line)
	}
	return out
}

// TestJoinFailureIsWarnedOnce: a node that reaches no seed says so at
// warning level once per streak of failures, naming the seed, the error
// and what to check, and says at info level when it gets in.
func TestJoinFailureIsWarnedOnce(t *testing.T) {
	t.Parallel()
	addrA := reservePort(t, nextIP())
	logs := &logRecorder{}
	cfgB := testConfig("b", Meta{Role: "ingress"}, addrA)
	cfgB.Logger = slog.New(logs)
	b := start(t, cfgB)

	const cannot, joined = "cannot join any seed", "joined the mesh after failing"
	failedRounds := func() int { return len(logs.matching(slog.LevelDebug, "join failed")) }
	wait.Until(t, 10*time.Second, "three failed rounds", func() bool { return failedRounds() >= 3 })
	warned := logs.matching(slog.LevelWarn, cannot)
	if len(warned) != 1 {
		t.Fatalf("%d warnings over %d failed rounds, want 1: %q", len(warned), failedRounds(), warned)
	}
	for _, want := range []string{addrA, "connection refused", "gossip.join", "TCP and UDP", "gossip.key", "gossip.label"} {
		if !strings.Contains(warned[0], want) {
			t.Errorf("the warning does not say %q: %s", want, warned[0])
		}
	}

	cfgA := testConfig("a", Meta{Role: "egress"})
	cfgA.Bind = addrA
	a := start(t, cfgA)
	wait.Until(t, 10*time.Second, "b to join a", func() bool { return slices.Equal(aliveNames(b), []string{"a", "b"}) })
	wait.Until(t, 5*time.Second, "the all-clear", func() bool { return len(logs.matching(slog.LevelInfo, joined)) == 1 })

	// a dies: a new streak of failures is warned about once more.
	a.Shutdown()
	wait.For(t, 10*time.Second, func() error {
		if len(logs.matching(slog.LevelWarn, cannot)) != 2 {
			return fmt.Errorf("no second warning; b sees %+v; info %q; debug %q", b.Snapshot().Members, logs.matching(slog.LevelInfo, ""), logs.matching(slog.LevelDebug, "join"))
		}
		return nil
	})
	n := failedRounds()
	wait.Until(t, 10*time.Second, "two more failed rounds", func() bool { return failedRounds() >= n+2 })
	if got := logs.matching(slog.LevelWarn, cannot); len(got) != 2 {
		t.Errorf("%d warnings, want 2: %q", len(got), got)
	}
}

// isolated checks that intruder never shows up in the good nodes' snapshots
// (and sees nobody itself), once they have converged.
func isolated(t *testing.T, intruder *Membership, good ...*Membership) {
	t.Helper()
	want := names(nil)
	for _, g := range good {
		want = append(want, g.Name())
	}
	slices.Sort(want)
	for _, g := range good {
		wait.Until(t, 10*time.Second, g.Name()+" to converge", func() bool {
			return slices.Equal(aliveNames(g), want)
		})
	}
	// Give the intruder's joins (every 200ms) time to fail repeatedly.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		for _, g := range good {
			if _, ok := g.Snapshot().Get(intruder.Name()); ok {
				t.Fatalf("%s sees %s", g.Name(), intruder.Name())
			}
		}
		if got := names(intruder.Snapshot().Members); !slices.Equal(got, []string{intruder.Name()}) {
			t.Fatalf("%s sees %v", intruder.Name(), got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keyedPair starts two members a and b that share a gossip key.
func keyedPair(t *testing.T) (a, b *Membership) {
	t.Helper()
	key := bytes.Repeat([]byte{7}, 32)
	cfgA := testConfig("a", Meta{})
	cfgA.Key = key
	a = start(t, cfgA)
	cfgB := testConfig("b", Meta{}, a.LocalAddr())
	cfgB.Key = key
	return a, start(t, cfgB)
}

func TestEncryption(t *testing.T) {
	t.Parallel()
	a, b := keyedPair(t)
	cfgX := testConfig("x", Meta{}, a.LocalAddr(), b.LocalAddr())
	cfgX.Key = bytes.Repeat([]byte{8}, 16)
	x := start(t, cfgX)
	isolated(t, x, a, b)
}

func TestLabel(t *testing.T) {
	t.Parallel()
	cfgA := testConfig("a", Meta{})
	cfgA.Label = "prod"
	a := start(t, cfgA)
	cfgB := testConfig("b", Meta{}, a.LocalAddr())
	cfgB.Label = "prod"
	b := start(t, cfgB)
	cfgX := testConfig("x", Meta{}, a.LocalAddr(), b.LocalAddr())
	cfgX.Label = "staging"
	x := start(t, cfgX)
	isolated(t, x, a, b)
}

func TestOnChange(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		self  *Membership
		calls []*Snapshot
		once  sync.Once
	)
	ready := make(chan struct{})
	cfg := testConfig("a", Meta{Role: "ingress"})
	cfg.OnChange = func(s *Snapshot) {
		<-ready
		// Everything may be called from here: we are not under memberlist's lock.
		_ = self.ml.Members()
		_ = self.Snapshot()
		_ = self.LocalAddr()
		once.Do(func() {
			if err := self.SetMeta(Meta{Role: "ingress", Version: "v2"}, 0); err != nil {
				t.Errorf("SetMeta from OnChange: %v", err)
			}
		})
		mu.Lock()
		calls = append(calls, s)
		mu.Unlock()
	}
	self = start(t, cfg)
	close(ready)
	b := start(t, testConfig("b", Meta{}, self.LocalAddr()))

	wait.Until(t, 10*time.Second, "OnChange to report b", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) > 0 && slices.Equal(names(calls[len(calls)-1].Alive()), []string{"a", "b"})
	})
	wait.Until(t, 5*time.Second, "b to see a's new version", func() bool {
		got, _ := b.Snapshot().Get("a")
		return got.Version == "v2"
	})
	mu.Lock()
	defer mu.Unlock()
	if first := calls[0]; !slices.Equal(names(first.Members), []string{"a"}) {
		t.Errorf("first OnChange = %v, want the local node alone", names(first.Members))
	}
	for i := 1; i < len(calls); i++ {
		if calls[i].equal(calls[i-1]) {
			t.Errorf("OnChange %d repeats the previous snapshot", i)
		}
	}
}

// TestOnChangeOneAtATime: the first call comes at start, before any peer
// exists, and calls never overlap while the mesh changes under them.
func TestOnChangeOneAtATime(t *testing.T) {
	t.Parallel()
	var inCall, overlaps atomic.Int32
	var mu sync.Mutex
	var calls []*Snapshot
	cfg := testConfig("a", Meta{Role: "ingress"})
	cfg.OnChange = func(s *Snapshot) {
		if inCall.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inCall.Add(-1)
		mu.Lock()
		calls = append(calls, s)
		mu.Unlock()
	}
	a := start(t, cfg)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
	wait.Until(t, 5*time.Second, "the first OnChange", func() bool { return count() > 0 })
	mu.Lock()
	first := calls[0]
	mu.Unlock()
	if got := names(first.Members); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("first OnChange = %v, want the local node alone", got)
	}

	// Churn: peers join, one leaves, one crashes.
	var peers []*Membership
	for _, name := range []string{"b", "c", "d"} {
		peers = append(peers, start(t, testConfig(name, Meta{Role: "egress"}, a.LocalAddr())))
	}
	wait.Until(t, 10*time.Second, "a to see everyone", func() bool { return slices.Equal(aliveNames(a), []string{"a", "b", "c", "d"}) })
	if err := peers[0].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	peers[1].Shutdown()
	wait.Until(t, 10*time.Second, "OnChange to report the churn", func() bool {
		mu.Lock()
		defer mu.Unlock()
		last := calls[len(calls)-1]
		return slices.Equal(names(last.Alive()), []string{"a", "d"}) && stateOf(a, "c") == StateDead
	})
	if n := overlaps.Load(); n != 0 {
		t.Errorf("%d OnChange calls overlapped another", n)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	good := testConfig("n", Meta{})
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no name", func(c *Config) { c.Name = "" }},
		{"no bind", func(c *Config) { c.Bind = "" }},
		{"bind without port", func(c *Config) { c.Bind = "127.0.0.1" }},
		{"bind host name", func(c *Config) { c.Bind = "localhost:0" }},
		{"bad port", func(c *Config) { c.Bind = "127.0.0.1:99999" }},
		{"bad advertise", func(c *Config) { c.Advertise = "nowhere" }},
		{"bad profile", func(c *Config) { c.Profile = "moon" }},
		{"short key", func(c *Config) { c.Key = []byte("short") }},
		{"negative rejoin", func(c *Config) { c.RejoinInterval = -time.Second }},
		{"long label", func(c *Config) { c.Label = strings.Repeat("l", 300) }},
		{"bad meta", func(c *Config) { c.Meta.Loc = "\xff" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			m, err := Start(cfg)
			if err == nil {
				_ = m.Shutdown()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestAdvertise(t *testing.T) {
	t.Parallel()
	ip := nextIP()
	cfg := testConfig("adv", Meta{})
	cfg.Bind = net.JoinHostPort(ip, "0")
	cfg.Advertise = net.JoinHostPort(ip, "0")
	m := start(t, cfg)
	host, port, err := net.SplitHostPort(m.LocalAddr())
	if err != nil || host != ip || port == "0" {
		t.Errorf("LocalAddr = %q, want %s with the bound port", m.LocalAddr(), ip)
	}
	if got, _ := m.Snapshot().Get("adv"); got.Addr != m.LocalAddr() {
		t.Errorf("local member addr = %q, want %q", got.Addr, m.LocalAddr())
	}
}

func TestLogBridge(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	w := logWriter{logger}
	for _, line := range []string{
		"[DEBUG] memberlist: chatter\n",
		"[INFO] memberlist: Marking x as failed\n",
		"[WARN] memberlist: Refuting a suspect message\n",
		"[ERR] memberlist: Conflicting address\n",
		"untagged\n",
	} {
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Errorf("Write = %d, %v", n, err)
		}
	}
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="memberlist: Marking x as failed"`,
		`level=WARN msg="memberlist: Refuting a suspect message"`,
		`level=ERROR msg="memberlist: Conflicting address"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "chatter") || strings.Contains(out, "untagged") {
		t.Errorf("debug lines logged at info:\n%s", out)
	}
}

func TestMissingKeyIsIsolated(t *testing.T) {
	t.Parallel()
	a, b := keyedPair(t)
	x := start(t, testConfig("x", Meta{}, a.LocalAddr(), b.LocalAddr())) // no key at all
	isolated(t, x, a, b)
}

// TestKeyRotation: each step of a rolling key rotation can run beside the
// step before it, so rotating never splits the mesh: (1) add the new key to
// keys everywhere, (2) make it the primary key everywhere, (3) drop the old.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	steps := []struct {
		key  []byte
		keys [][]byte
	}{
		{oldKey, nil},
		{oldKey, [][]byte{newKey}},
		{newKey, [][]byte{oldKey}},
		{newKey, nil},
	}
	for i := 1; i < len(steps); i++ {
		t.Run(fmt.Sprintf("step%d-beside-step%d", i, i-1), func(t *testing.T) {
			t.Parallel()
			cfgA := testConfig("a", Meta{})
			cfgA.Key, cfgA.Keys = steps[i-1].key, steps[i-1].keys
			a := start(t, cfgA)
			cfgB := testConfig("b", Meta{}, a.LocalAddr())
			cfgB.Key, cfgB.Keys = steps[i].key, steps[i].keys
			b := start(t, cfgB)
			for _, m := range []*Membership{a, b} {
				wait.Until(t, 10*time.Second, m.Name()+" to see both", func() bool {
					return slices.Equal(aliveNames(m), []string{"a", "b"})
				})
			}
		})
	}
}

// A node restarted at the same address before its peers noticed it was
// gone gossips a new Start: its peers see the change at once (memberlist
// reports no change for a restart with identical metadata, and the old
// process's connections would look fine until they fail).
func TestRestartWithinSuspicionIsSeen(t *testing.T) {
	t.Parallel()
	a := start(t, testConfig("a", Meta{Role: "ingress"}))
	cfg := testConfig("b", Meta{Role: "egress", Start: "first"}, a.LocalAddr())
	b := start(t, cfg)
	wait.Until(t, 10*time.Second, "a to see b", func() bool {
		mem, _ := a.Snapshot().Get("b")
		return mem.State == StateAlive && mem.Start == "first"
	})
	if err := b.Shutdown(); err != nil { // a crash: no leave
		t.Fatal(err)
	}
	cfg.Bind = b.LocalAddr()
	cfg.Meta.Start = "second"
	start(t, cfg)
	wait.Until(t, 5*time.Second, "a to see b's new start", func() bool {
		mem, _ := a.Snapshot().Get("b")
		return mem.State == StateAlive && mem.Start == "second"
	})
}
