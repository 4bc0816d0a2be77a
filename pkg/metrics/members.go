package metrics

import (
	"slices"

	"github.com/llmesh/llmesh/pkg/role"
	"github.com/llmesh/llmesh/pkg/routing"
)

// Member is one mesh member as the membership metrics see it.
type Member struct {
	Name  string
	Role  string
	Hint  string
	State string // alive, draining, dead, left
}

type memberKey struct{ role, hint, state string }

// Hint is hint as a label value: one of the location hints, "" (none),
// else "other". Gossip metadata is any key holder's to write; labels stay
// bounded.
func Hint(hint string) string {
	if hint == "" || slices.Contains(routing.Hints, hint) {
		return hint
	}
	return "other"
}

func roleLabel(r string) string {
	if role.Role(r).Valid() {
		return r
	}
	return "other"
}

// SetMembers replaces the membership gauge with members, and counts each
// member whose state changed since the last call (a new member counts as
// entering its state; one forgotten counts nothing).
func (m *Metrics) SetMembers(members []Member) {
	if m == nil {
		return
	}
	counts := make(map[memberKey]int)
	now := make(map[string]memberKey, len(members))
	for _, mb := range members {
		k := memberKey{roleLabel(mb.Role), Hint(mb.Hint), mb.State}
		counts[k]++
		now[mb.Name] = k
	}
	m.statesMu.Lock()
	for name, k := range now {
		if prev, ok := m.states[name]; !ok || prev.state != k.state {
			m.memberChanges.WithLabelValues(k.role, k.hint, k.state).Inc()
		}
	}
	m.states = now
	m.statesMu.Unlock()
	m.members.Reset()
	for k, n := range counts {
		m.members.WithLabelValues(k.role, k.hint, k.state).Set(float64(n))
	}
}
