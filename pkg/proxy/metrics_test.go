package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/provider"
)

// histogram returns the count and sum of the named histogram's series with
// the given provider and route.
func histogram(t *testing.T, m *metrics.Metrics, name, prov, route string) (uint64, float64) {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.Metric {
			if label(s, "provider") == prov && label(s, "route") == route {
				return s.GetHistogram().GetSampleCount(), s.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestMeshOverheadExcludesTheProvider: the overhead is the time to the
// response head less the wait for the provider's head, so a provider that
// thinks before answering adds to the time to first byte, never to the
// overhead.
func TestMeshOverheadExcludesTheProvider(t *testing.T) {
	const think = 100 * time.Millisecond
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(think)
		w.Write([]byte(`{"ok":true}`))
	})
	m := metrics.New("ingress", "test")
	h := newHandler(t, Config{
		Providers:       provider.NewRegistry(newProvider(t, "p", up.URL, provider.StyleOpenAI, 1<<20)),
		Router:          routeTo(Target{Route: RouteDirect}),
		Metrics:         m,
		BodyIdleTimeout: 30 * time.Second,
	})
	srv, client := front(t, h)
	const n, body = 3, `{"model":"m"}`
	for range n {
		resp, err := client.Post(srv.URL+"/p/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ttfbCount, ttfb := histogram(t, m, "llmesh_time_to_first_byte_seconds", "p", "direct")
	overCount, over := histogram(t, m, "llmesh_mesh_overhead_seconds", "p", "direct")
	if ttfbCount != n || overCount != n {
		t.Fatalf("observed %d times to first byte and %d overheads, want %d", ttfbCount, overCount, n)
	}
	if ttfb < n*think.Seconds() {
		t.Errorf("time to first byte %.3fs for %d requests: less than the provider's %v each", ttfb, n, think)
	}
	// The provider's think time is in the wait that the overhead leaves out.
	if limit := ttfb - n*think.Seconds(); over > limit {
		t.Errorf("overhead %.3fs is more than the time to first byte less the provider's (%.3fs)", over, limit)
	}
	if got := metricsCounter(t, m, "llmesh_request_body_bytes_total"); got != n*float64(len(body)) {
		t.Errorf("request bytes %v, want %d", got, n*len(body))
	}
}

// metricsCounter is the sum of a counter family's series.
func metricsCounter(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range fams {
		if f.GetName() == name {
			for _, s := range f.Metric {
				total += s.GetCounter().GetValue()
			}
		}
	}
	return total
}
