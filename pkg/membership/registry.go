package membership

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// registry records every node memberlist tells us about. It is memberlist's
// EventDelegate: the callbacks run under memberlist's node lock, so they only
// record and signal, never block and never call back into memberlist.
type registry struct {
	mu    sync.Mutex
	nodes map[string]*record
	// changed is a 1-slot signal to the rebuilder; a full slot means a
	// rebuild is already pending.
	changed chan struct{}
}

type record struct {
	member  Member
	since   time.Time // last change
	metaErr error     // why the metadata did not decode, if it did not
	logged  bool      // metaErr has been logged
}

func newRegistry() *registry {
	return &registry{
		nodes:   make(map[string]*record),
		changed: make(chan struct{}, 1),
	}
}

var _ memberlist.EventDelegate = (*registry)(nil)

func (r *registry) NotifyJoin(n *memberlist.Node)   { r.observe(n, true) }
func (r *registry) NotifyUpdate(n *memberlist.Node) { r.observe(n, true) }
func (r *registry) NotifyLeave(n *memberlist.Node)  { r.observe(n, false) }

func (r *registry) observe(n *memberlist.Node, alive bool) {
	meta, leaving, err := decodeMeta(n.Meta)
	if leaving {
		// A node that announced its departure takes no new work.
		meta.Draining = true
	}
	state := StateAlive
	switch {
	case alive:
	case leaving, meta.Draining:
		// A draining node was stopping on purpose; its leaving flag may not
		// have reached us before its departure did.
		state = StateLeft
	default:
		state = StateDead
	}
	rec := &record{
		member:  Member{Name: n.Name, Addr: n.Address(), State: state, Meta: meta},
		since:   time.Now(),
		metaErr: err,
	}

	r.mu.Lock()
	if old, ok := r.nodes[n.Name]; ok && old.metaErr != nil && err != nil {
		rec.logged = old.logged // log a bad node once, not at every event
	}
	r.nodes[n.Name] = rec
	r.mu.Unlock()

	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// forgetTime is how long a member in state is listed after its last
// change; 0 = for as long as it stays in that state.
func forgetTime(state State, forget time.Duration) time.Duration {
	switch state {
	case StateAlive:
		return 0
	case StateLeft:
		// A node that left did so on purpose (a scale-down, or a rolling
		// update that renames pods): not news for long.
		return min(forget, forgetLeftAfter)
	}
	return forget
}

// badMeta names a member whose metadata did not decode.
type badMeta struct {
	name string
	err  error
}

// snapshot builds a snapshot at now, forgetting nodes that have been dead
// for longer than forget, or gone (left) for longer than forget or
// forgetLeftAfter, whichever is shorter. It also returns members with
// undecodable metadata not reported before.
func (r *registry) snapshot(now time.Time, forget time.Duration) (*Snapshot, []badMeta) {
	var bad []badMeta
	r.mu.Lock()
	members := make([]Member, 0, len(r.nodes))
	for name, rec := range r.nodes {
		if keep := forgetTime(rec.member.State, forget); keep > 0 && now.Sub(rec.since) > keep {
			delete(r.nodes, name)
			continue
		}
		if rec.metaErr != nil && !rec.logged {
			rec.logged = true
			bad = append(bad, badMeta{name, rec.metaErr})
		}
		members = append(members, rec.member)
	}
	r.mu.Unlock()

	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return &Snapshot{Members: members}, bad
}
