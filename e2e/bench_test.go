package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/role"
)

// benchMesh is one HK ingress, one wnam egress and the fake provider, with
// logs discarded so the numbers measure the mesh, not the log sink.
func benchMesh(b *testing.B) (direct, tunnelled string) {
	m := newMesh(b)
	quiet := func(c *config.Config) { c.Log.Level = "error" }
	m.start(nodeSpec{role: role.Egress, name: "b-wnam", loc: "US", hint: "wnam", edit: quiet})
	hk := m.start(nodeSpec{role: role.Ingress, name: "b-hk", loc: "HK", rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}, providerURL: closedURL(b), edit: quiet})
	us := m.start(nodeSpec{role: role.Ingress, name: "b-us", loc: "US", edit: quiet})
	m.waitMembers(hk, "b-wnam")
	m.logs.discard = true
	return baseURL(us), baseURL(hk)
}

func benchRequests(b *testing.B, url, body string, header map[string]string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			for k, v := range header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n == 0 {
				b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
			}
		}
	})
}

const benchChat = `{"model":"fake-gpt","messages":[{"role":"user","content":"hello"}]}`
const benchStream = `{"model":"fake-gpt","stream":true,"messages":[{"role":"user","content":"hello"}]}`

// BenchmarkMeshChat: a small non-streaming chat completion, end to end
// (client → ingress → [tunnel → egress] → fake provider), in one process:
// allocations count every hop.
func BenchmarkMeshChat(b *testing.B) {
	direct, tunnelled := benchMesh(b)
	b.Run("direct", func(b *testing.B) { benchRequests(b, direct+"/openai/v1/chat/completions", benchChat, nil) })
	b.Run("tunnel", func(b *testing.B) { benchRequests(b, tunnelled+"/openai/v1/chat/completions", benchChat, nil) })
}

// BenchmarkMeshSSE: a 20-event SSE stream, end to end.
func BenchmarkMeshSSE(b *testing.B) {
	direct, tunnelled := benchMesh(b)
	h := map[string]string{"X-Fake-Chunks": "20"}
	b.Run("direct", func(b *testing.B) { benchRequests(b, direct+"/openai/v1/chat/completions", benchStream, h) })
	b.Run("tunnel", func(b *testing.B) { benchRequests(b, tunnelled+"/openai/v1/chat/completions", benchStream, h) })
}
