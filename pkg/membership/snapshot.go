package membership

import (
	"github.com/llmesh/llmesh/pkg/role"
	"slices"
	"sort"
	"strings"
)

// State is a member's liveness as this node sees it.
type State string

const (
	StateAlive State = "alive"
	StateDead  State = "dead"
	StateLeft  State = "left"
)

// Member is one node of the mesh.
type Member struct {
	Name  string `json:"name"`
	Addr  string `json:"addr"` // gossip address host:port
	State State  `json:"state"`
	Meta
}

// Snapshot is an immutable view of the mesh, Members sorted by Name. It
// includes the local node. Do not modify it.
type Snapshot struct {
	Members []Member `json:"members"`
}

// Alive returns the alive members.
func (s *Snapshot) Alive() []Member {
	return s.filter(func(m Member) bool { return m.State == StateAlive })
}

// Egress returns the alive, not draining egress members with the given
// region hint; hint "" matches any hint. Members whose metadata could not be
// decoded have no role and are never returned.
func (s *Snapshot) Egress(hint string) []Member {
	return s.filter(func(m Member) bool {
		return m.State == StateAlive && m.Role == role.Egress && !m.Draining &&
			(hint == "" || m.Hint == hint)
	})
}

// Get returns the member with the given name.
func (s *Snapshot) Get(name string) (Member, bool) {
	i, ok := sort.Find(len(s.Members), func(i int) int {
		return strings.Compare(name, s.Members[i].Name)
	})
	if !ok {
		return Member{}, false
	}
	return s.Members[i], true
}

func (s *Snapshot) filter(keep func(Member) bool) []Member {
	var out []Member
	for _, m := range s.Members {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

func (s *Snapshot) equal(o *Snapshot) bool {
	return slices.Equal(s.Members, o.Members)
}
