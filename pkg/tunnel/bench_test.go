package tunnel

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
)

// benchConn serves h on a loopback egress and returns a Conn to it.
func benchConn(b testing.TB, h http.Handler) *Conn {
	b.Helper()
	_, addr := startEgress(b, ServerConfig{Handler: h})
	return dialEgress(b, addr, DialConfig{})
}

func roundTrip(b testing.TB, c *Conn, method string, body []byte) {
	exchangeVia(b, c, method, "llmesh://openai/v1/chat/completions", body)
}

// exchangeVia sends a chat completion's request to url through rt and
// reads the whole answer.
func exchangeVia(b testing.TB, rt http.RoundTripper, method, url string, body []byte) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(b.Context(), method, url, r)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-bench")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
}

// chatEgress answers a non-streamed chat completion with its length.
var chatEgress = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(chatAnswer)))
	w.Write(chatAnswer)
})

var (
	chatAnswer  = []byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
	chatRequest = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`)
)

func BenchmarkTunnelRoundTrip(b *testing.B) {
	c := benchConn(b, chatEgress)
	b.ReportAllocs()
	for b.Loop() {
		roundTrip(b, c, http.MethodPost, chatRequest)
	}
}

func BenchmarkTunnelStream64KiB(b *testing.B) {
	const size = 64 << 10
	event := []byte("data: {\"delta\":\"token\"}\n\n")
	payload := bytes.Repeat(event, size/len(event)+1)[:size]
	c := benchConn(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		// SSE-sized writes, as a provider's stream arrives.
		for p := payload; len(p) > 0; {
			n := min(len(p), 4096)
			w.Write(p[:n])
			p = p[n:]
		}
	}))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		roundTrip(b, c, http.MethodGet, nil)
	}
}

func BenchmarkTunnelUpload1MiB(b *testing.B) {
	const size = 1 << 20
	body := bytes.Repeat([]byte{'x'}, size)
	c := benchConn(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		roundTrip(b, c, http.MethodPost, body)
	}
}

// BenchmarkIdleConnMemory reports what an idle tunnel connection holds,
// both ends together, after one exchange: an egress keeps one per ingress
// and an ingress one per egress of its hints, busy or not (B/conn: heap and
// stacks, after a GC).
func BenchmarkIdleConnMemory(b *testing.B) {
	const conns = 200
	_, addr := startEgress(b, ServerConfig{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"ok":true}`))
	})})
	inUse := func() uint64 {
		runtime.GC()
		runtime.GC() // and what sync.Pools kept through the first
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	var perConn float64
	for b.Loop() {
		before := inUse()
		cs := make([]*Conn, conns)
		for i := range cs {
			c, err := Dial("egress-1", addr, DialConfig{})
			if err != nil {
				b.Fatal(err)
			}
			cs[i] = c
			roundTrip(b, c, http.MethodPost, []byte(`{}`))
		}
		perConn = float64(inUse()-before) / conns
		for _, c := range cs {
			c.Close()
		}
	}
	b.ReportMetric(perConn, "B/conn")
}
