package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrStopped is returned after Shutdown.
	ErrStopped = errors.New("membership: shut down")
	// ErrLeft is returned by SetMeta after Leave.
	ErrLeft = errors.New("membership: node has left")
)

const (
	// rebuildInterval also rebuilds without events, to forget old nodes.
	rebuildInterval = time.Second
	// updateTimeout bounds how long SetMeta waits for its broadcast when
	// given no timeout.
	updateTimeout = 5 * time.Second
	// defaultLeaveTimeout is used when Leave gets no timeout: memberlist
	// would otherwise wait forever for a broadcast nobody may receive.
	defaultLeaveTimeout = 5 * time.Second
)

// Membership is this node's membership of the mesh.
type Membership struct {
	name      string
	localAddr string
	ml        *memberlist.Memberlist
	reg       *registry
	delegate  *delegate
	log       *slog.Logger
	onChange  func(*Snapshot)
	seeds     []string
	seedAddrs []string // seeds[i] as a comparable host:port, "" for host names
	rejoin    time.Duration
	forget    time.Duration
	snap      atomic.Pointer[Snapshot]
	// joinFailing: the last round of joins reached no seed while this node
	// saw no other member (rejoinLoop's goroutine only).
	joinFailing bool

	mu      sync.Mutex // serialises SetMeta, Leave and the start of Shutdown
	meta    Meta
	left    bool
	stopped bool

	done     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// Start creates the local node and starts gossip. Seeds are joined in the
// background: a seed that is down is logged, not fatal, and the rejoin loop
// keeps trying.
func Start(cfg Config) (*Membership, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	encoded, err := cfg.Meta.Encode()
	if err != nil {
		return nil, err
	}
	reg := newRegistry()
	d := &delegate{}
	d.set(encoded)
	mc, err := cfg.memberlist(reg, d, logger)
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}

	m := &Membership{
		name:      cfg.Name,
		localAddr: ml.LocalNode().Address(),
		ml:        ml,
		reg:       reg,
		delegate:  d,
		log:       logger,
		onChange:  cfg.OnChange,
		seeds:     append([]string(nil), cfg.Join...),
		rejoin:    cfg.RejoinInterval,
		forget:    cfg.forget,
		meta:      cfg.Meta,
		done:      make(chan struct{}),
	}
	if m.rejoin == 0 {
		m.rejoin = defaultRejoinInterval
	}
	if m.forget == 0 {
		m.forget = forgetAfter
	}
	for _, s := range m.seeds {
		m.seedAddrs = append(m.seedAddrs, seedAddr(s, mc.BindPort))
	}
	first := m.rebuild() // the local node is known: Snapshot is useful right away

	m.wg.Add(2)
	go m.rebuildLoop(first)
	go m.rejoinLoop()
	return m, nil
}

// Name returns the local node's name.
func (m *Membership) Name() string { return m.name }

// LocalAddr returns the gossip address peers use for this node, host:port,
// with a port 0 binding resolved.
func (m *Membership) LocalAddr() string { return m.localAddr }

// Snapshot returns the latest view of the mesh; never nil.
func (m *Membership) Snapshot() *Snapshot { return m.snap.Load() }

// SetMeta changes the local metadata and gossips it, waiting a few seconds
// at most for the broadcast (the change spreads anyway).
func (m *Membership) SetMeta(meta Meta, timeout time.Duration) error {
	return m.UpdateMeta(func(old *Meta) { *old = meta }, timeout)
}

// UpdateMeta is SetMeta of the current metadata as edit changes it, so that
// callers changing different fields (draining, certificate expiry) do not
// undo each other's changes.
func (m *Membership) UpdateMeta(edit func(*Meta), timeout time.Duration) error {
	if timeout <= 0 {
		timeout = updateTimeout
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.stopped:
		return ErrStopped
	case m.left:
		// memberlist ignores updates after Leave; do not wait for nothing.
		return ErrLeft
	}
	meta := m.meta
	edit(&meta)
	encoded, err := meta.Encode()
	if err != nil {
		return err
	}
	m.meta = meta
	m.delegate.set(encoded)
	if err := m.ml.UpdateNode(timeout); err != nil {
		m.log.Warn("membership: metadata broadcast not confirmed", "err", err)
	}
	return nil
}

// Leave announces a graceful departure and waits for it to be gossiped, up
// to timeout (≤ 0 means 5s). Draining is the caller's job (SetMeta) and
// comes first. Leave is idempotent; after Shutdown it returns ErrStopped.
func (m *Membership) Leave(timeout time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	if m.left {
		return nil
	}
	if timeout <= 0 {
		timeout = defaultLeaveTimeout
	}
	deadline := time.Now().Add(timeout)

	// memberlist's leave message carries no reason; flag our metadata first
	// so peers record "left" rather than "dead".
	if encoded, err := m.meta.encode(true); err == nil {
		m.delegate.set(encoded)
		if err := m.ml.UpdateNode(timeout / 2); err != nil {
			m.log.Debug("membership: leaving flag not confirmed", "err", err)
		}
	}
	m.left = true
	remaining := max(time.Until(deadline), time.Millisecond)
	if err := m.ml.Leave(remaining); err != nil {
		return fmt.Errorf("membership: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip and this package's goroutines, without a leave
// message (peers will see the node dead; call Leave first to be seen left).
// It is idempotent.
func (m *Membership) Shutdown() error {
	m.mu.Lock()
	m.stopped = true // after this, Leave and SetMeta no longer touch memberlist
	m.mu.Unlock()
	m.stopOnce.Do(func() {
		close(m.done)
		m.wg.Wait()
		if err := m.ml.Shutdown(); err != nil {
			m.stopErr = fmt.Errorf("membership: shutdown: %w", err)
		}
	})
	return m.stopErr
}

// rebuild stores a fresh snapshot if it differs from the current one and
// returns the current one.
func (m *Membership) rebuild() *Snapshot {
	next, bad := m.reg.snapshot(time.Now(), m.forget)
	for _, b := range bad {
		m.log.Warn("membership: undecodable node metadata", "node", b.name, "err", b.err)
	}
	if prev := m.snap.Load(); prev != nil && prev.equal(next) {
		return prev
	}
	m.snap.Store(next)
	return next
}

// rebuildLoop makes every OnChange call, one at a time: the first with the
// snapshot Start made, then one per new snapshot.
func (m *Membership) rebuildLoop(first *Snapshot) {
	defer m.wg.Done()
	tick := time.NewTicker(rebuildInterval)
	defer tick.Stop()
	notified := first
	if m.onChange != nil {
		m.onChange(first)
	}
	for {
		select {
		case <-m.done:
			return
		case <-m.reg.changed:
		case <-tick.C:
		}
		if s := m.rebuild(); m.onChange != nil && s != notified {
			notified = s
			m.onChange(s)
		}
	}
}

// rejoinLoop joins the seeds at start and then, every jittered interval,
// the seeds that are not alive members: memberlist alone never heals a
// partition.
func (m *Membership) rejoinLoop() {
	defer m.wg.Done()
	if len(m.seeds) == 0 {
		return
	}
	for {
		m.joinSeeds()
		t := time.NewTimer(jitter(m.rejoin))
		select {
		case <-m.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (m *Membership) joinSeeds() {
	alive := make(map[string]bool)
	for _, mem := range m.Snapshot().Alive() {
		alive[mem.Addr] = true
	}
	var failed []string // "seed: error"
	reached := false
	for i, seed := range m.seeds {
		addr := m.seedAddrs[i]
		if addr == m.localAddr {
			continue
		}
		if alive[addr] {
			reached = true
			continue
		}
		select {
		case <-m.done:
			return
		default:
		}
		// One seed at a time, so Shutdown waits for one dial at most.
		if _, err := m.ml.Join([]string{seed}); err != nil {
			m.log.Debug("membership: join failed", "seed", seed, "err", err)
			failed = append(failed, seed+": "+oneLine(err.Error()))
			continue
		}
		reached = true
		m.log.Debug("membership: joined", "seed", seed)
	}
	m.noteJoins(reached, failed)
}

// noteJoins says once, at warning level, when a round of joins reached no
// seed and this node sees nobody else (it is out of the mesh, and nothing
// else would say so), and at info level when that ends.
func (m *Membership) noteJoins(reached bool, failed []string) {
	others := m.ml.NumMembers() - 1
	alone := !reached && len(failed) > 0 && others <= 0
	switch {
	case alone && !m.joinFailing:
		m.joinFailing = true
		m.log.Warn("membership: cannot join any seed; this node sees no other member and stays out of the mesh until one answers. "+
			"Check the seed addresses (gossip.join), that both TCP and UDP reach the seeds' gossip port through firewalls, "+
			"and that gossip.key and gossip.label match the mesh's",
			"seeds", strings.Join(failed, "; "), "retry_every", m.rejoin)
	case !alone && m.joinFailing:
		m.joinFailing = false
		m.log.Info("membership: joined the mesh after failing to", "members", others+1)
	}
}

// oneLine folds memberlist's multi-line errors into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// seedAddr normalises a seed ("[name/]host[:port]") to the host:port form of
// Member.Addr. Host names return "": they cannot be compared without a
// lookup, so they are simply joined again at every interval.
func seedAddr(seed string, defaultPort int) string {
	if _, rest, ok := strings.Cut(seed, "/"); ok {
		seed = rest
	}
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		host, port = strings.Trim(seed, "[]"), strconv.Itoa(defaultPort)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return ""
	}
	return net.JoinHostPort(ip.String(), port)
}

// jitter returns d ± 25%.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// delegate hands memberlist the encoded local metadata.
type delegate struct {
	meta atomic.Pointer[[]byte]
}

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) set(b []byte) { d.meta.Store(&b) }

func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.meta.Load()
	if len(b) > limit {
		return nil // never happens: sizes are checked on set; memberlist would panic
	}
	return append([]byte(nil), b...)
}

func (d *delegate) NotifyMsg([]byte)                {}
func (d *delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *delegate) LocalState(bool) []byte          { return nil }
func (d *delegate) MergeRemoteState([]byte, bool)   {}
