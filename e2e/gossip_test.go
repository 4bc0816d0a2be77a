package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// TestNodeTakesMembersOnlyFromOnChange: membership promises one OnChange
// call at a time, the first at start. The node must apply views only
// through it: a view applied by the node itself (at start, from its own
// goroutine) races membership's calls, and an older snapshot can land last.
// Membership's calls are held here; until one goes through, the node must
// not have applied any view (the members gauge is empty).
func TestNodeTakesMembersOnlyFromOnChange(t *testing.T) {
	cfg := config.Default(role.Ingress)
	cfg.Node.Name = "onchange-in"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Gossip.Bind = "127.0.0.1:0"
	cfg.Gossip.Profile = "local"
	rt, err := cfg.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	var inCall, overlaps, calls atomic.Int32
	opts := node.Options{TuneGossip: func(mc *membership.Config) {
		fastGossip(mc)
		apply := mc.OnChange
		mc.OnChange = func(s *membership.Snapshot) {
			<-release
			if inCall.Add(1) > 1 {
				overlaps.Add(1)
			}
			apply(s)
			calls.Add(1)
			inCall.Add(-1)
		}
	}}
	n, err := node.Start(rt, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		free()
		t.Fatal(err)
	}
	t.Cleanup(func() { free(); n.Close() })

	metrics := func() string {
		resp, err := http.Get(baseURL(n) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if m := metrics(); strings.Contains(m, "llmesh_members{") {
		t.Fatalf("the node applied a membership view outside OnChange:\n%s", grepLines(m, "llmesh_members"))
	}
	free()
	wait.For(t, 5*time.Second, func() error {
		if m := metrics(); !strings.Contains(m, `role="ingress",state="alive"} 1`) {
			return fmt.Errorf("no members gauge yet:\n%s", grepLines(m, "llmesh_members"))
		}
		return nil
	})
	if calls.Load() < 1 || overlaps.Load() != 0 {
		t.Errorf("%d OnChange calls, %d overlapping", calls.Load(), overlaps.Load())
	}
}

func grepLines(s, substr string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
