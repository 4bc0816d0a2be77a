package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/tunnel"
)

// bytesMesh is one provider behind two ingress proxies: one calls it
// directly, the other through a real tunnel to an egress proxy. The
// provider echoes what it got: the X-Fuzz header as X-Echo, the raw query
// as the body, and always answers with a Latin-1 header of its own.
type bytesMesh struct {
	direct, tunnelled string // ingress base URLs
	client            *http.Client
	conn              *tunnel.Conn
	notSent           atomic.Int64 // round trips that failed as NotSentError
}

// providerNote is the provider's own Latin-1 response header value.
const providerNote = "caf\xe9 cr\xe8me"

func newBytesMesh(tb testing.TB) *bytesMesh {
	tb.Helper()
	m := &bytesMesh{}
	up := upstream(tb, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("X-Fuzz"))
		w.Header().Set("X-Provider-Note", providerNote)
		io.WriteString(w, r.URL.RawQuery)
	})

	egress := newHandler(tb, Config{Providers: provider.NewRegistry(newProvider(tb, "openrouter", up.URL, provider.StyleOpenAI, 0)),
		MetricsRoute: "relay", Relay: true})
	m.conn = dialEgress(tb, egress)
	counted := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := m.conn.RoundTrip(r)
		var ns *tunnel.NotSentError
		if errors.As(err, &ns) {
			m.notSent.Add(1)
		}
		return resp, err
	})

	direct := newHandler(tb, Config{Providers: provider.NewRegistry(newProvider(tb, "openrouter", up.URL, provider.StyleOpenAI, 0)),
		Router: routeTo(Target{Route: "direct"})})
	tunnelled := newHandler(tb, Config{Providers: provider.NewRegistry(newProvider(tb, "openrouter", "http://"+closedAddr(tb), provider.StyleOpenAI, 0)),
		Router: routeTo(Target{Transport: counted, Tunnel: true, Route: "egress", Egress: "e1", Hint: "eu"})})
	ds, client := front(tb, direct)
	ts, _ := front(tb, tunnelled)
	ds.Config.ErrorLog, ts.Config.ErrorLog = quietLog(), quietLog()
	m.direct, m.tunnelled, m.client = ds.URL, ts.URL, client
	return m
}

// answer is what a client got, less what differs by route.
type answer struct {
	status                  int
	code, echo, note, route string
	body                    string
}

// get sends GET /openrouter/v1/models?{query} with X-Fuzz: value to base.
func (m *bytesMesh) get(tb testing.TB, base, value, query string) answer {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodGet, base+"/openrouter/v1/models", nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.URL.RawQuery = query
	req.Header.Set("X-Fuzz", value)
	resp, err := m.client.Do(req)
	if err != nil {
		tb.Fatalf("%s: %v", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s: reading the body: %v", base, err)
	}
	a := answer{status: resp.StatusCode, code: resp.Header.Get(HeaderError), route: resp.Header.Get(HeaderRoute),
		echo: resp.Header.Get("X-Echo"), note: resp.Header.Get("X-Provider-Note")}
	if resp.StatusCode == http.StatusOK {
		a.body = string(b) // error bodies name the route's own details
	}
	return a
}

// checkTunnel fails tb if the tunnel path answered otherwise than the direct
// one, or if the egress connection was ejected.
func (m *bytesMesh) checkTunnel(tb testing.TB, value, query string) answer {
	tb.Helper()
	d := m.get(tb, m.direct, value, query)
	tn := m.get(tb, m.tunnelled, value, query)
	d.route, tn.route = "", ""
	if tn != d {
		tb.Errorf("X-Fuzz %q, query %q:\n direct: %+v\n tunnel: %+v", value, query, d, tn)
	}
	if n := m.notSent.Load(); n != 0 || !m.conn.Usable() {
		tb.Fatalf("X-Fuzz %q, query %q: the egress was ejected (%d NotSentError)", value, query, n)
	}
	return tn
}

// OpenRouter's X-Title app header with an accented name, as Node's fetch
// sends it (Latin-1): 200 through the tunnel as on the direct path, the
// provider sees the same bytes, and the egress stays in rotation.
func TestTunnelLatin1RequestHeader(t *testing.T) {
	checkLeaks(t)
	m := newBytesMesh(t)
	a := m.checkTunnel(t, "Caf\xe9 Bot", "q=caf\xe9")
	if a.status != http.StatusOK || a.echo != "Caf\xe9 Bot" || a.body != "q=caf\xe9" {
		t.Errorf("through the tunnel: %+v", a)
	}
}

// A provider's response header with byte 0xE9 reaches the client through
// the tunnel: a 200 the provider already billed stays a 200.
func TestTunnelLatin1ResponseHeader(t *testing.T) {
	checkLeaks(t)
	m := newBytesMesh(t)
	a := m.checkTunnel(t, "plain", "")
	if a.status != http.StatusOK || a.note != providerNote {
		t.Errorf("through the tunnel: %+v", a)
	}
}

// FuzzTunnelBytes sends arbitrary header-value and query bytes through a
// real tunnel and directly: same answer, and the egress is never ejected.
func FuzzTunnelBytes(f *testing.F) {
	seeds := []struct{ value, query string }{
		{"Caf\xe9 Bot", "q=caf\xe9"},
		{"\x80\xff", "\xff\xfe=\x80"},
		{"ascii", "a=1&b=%20"},
		{"ü UTF-8", "ü=1"},
		{"tab\tinside", "a#fragment"},
		{" padded ", "%zz"},
		{"", ""},
	}
	for _, s := range seeds {
		f.Add(s.value, s.query)
	}
	m := newBytesMesh(f)
	f.Fuzz(func(t *testing.T, value, query string) {
		if !httpguts.ValidHeaderFieldValue(value) {
			t.Skip("no client can send this header value") // net/http refuses it
		}
		// Keep the request line a request line: net/http refuses to
		// write control characters in a URL, and a space ends it.
		q := make([]byte, 0, len(query))
		for i := 0; i < len(query); i++ {
			if c := query[i]; c > ' ' && c != 0x7f {
				q = append(q, c)
			}
		}
		query = string(q)
		m.checkTunnel(t, value, query)
	})
}
