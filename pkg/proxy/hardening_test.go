package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/pkg/provider"
)

// wantAccessLog checks that the access log line holds every field.
func wantAccessLog(t *testing.T, logs *testio.Buffer, fields ...string) {
	t.Helper()
	line := accessLine(t, logs)
	for _, f := range fields {
		if !strings.Contains(line, f) {
			t.Errorf("access log lacks %q: %s", f, line)
		}
	}
}

// accessLine is the access log line ("msg=request") in logs.
func accessLine(t *testing.T, logs *testio.Buffer) string {
	t.Helper()
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "msg=request ") {
			return l
		}
	}
	t.Fatalf("no access log line in:\n%s", logs)
	return ""
}

// TestLogsReportTheRouteThatServed: after a failover, the access log names
// the egress that served the request and how many tries it took.
func TestLogsReportTheRouteThatServed(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openai", "https://api.example", provider.StyleOpenAI, 1<<20)
	var logs testio.Buffer
	rt := &retrier{
		first:  Target{Transport: &refusing{}, Tunnel: true, Route: "egress", Egress: "e1", Reason: "rule"},
		second: Target{Transport: &recording{}, Tunnel: true, Route: "egress", Egress: "e2", Reason: "rule"},
	}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100, Logger: logs.Logger()})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/openai/v1/x", strings.NewReader("{}")))
	if w.Code != 200 || w.Header().Get(HeaderEgress) != "e2" {
		t.Fatalf("status %d via %q", w.Code, w.Header().Get(HeaderEgress))
	}
	wantAccessLog(t, &logs, " route=egress ", " egress=e2 ", " attempts=2 ", " status=200 ")
}

// TestRegionRerouteLogsTheEgress: a direct request rerouted after a region
// refusal is logged (and counted) as the egress route it took.
func TestRegionRerouteLogsTheEgress(t *testing.T) {
	checkLeaks(t)
	blocked := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, regionRefusal)
	})
	p := newProvider(t, "openai", blocked.URL, provider.StyleOpenAI, 1<<20)
	var logs testio.Buffer
	rt := &retrier{first: Target{Route: "direct", Reason: "no-rule"},
		second: Target{Transport: &recording{}, Tunnel: true, Route: "egress", Egress: "e1", Hint: "wnam", Reroute: "region-block", Reason: "region-block"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100, RegionReroute: true, Logger: logs.Logger()})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/openai/v1/x", strings.NewReader("{}")))
	if w.Code != 200 || w.Header().Get(HeaderRoute) != "egress" {
		t.Fatalf("status %d route %q", w.Code, w.Header().Get(HeaderRoute))
	}
	wantAccessLog(t, &logs, " route=egress ", " egress=e1 ", " reason=region-block ", " attempts=2 ")
}

const regionRefusal = `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`

// TestRefusalKeptWhenReplayFails: when a region refusal cannot be sent
// again, the refusal itself is the answer, readable to its last byte.
func TestRefusalKeptWhenReplayFails(t *testing.T) {
	checkLeaks(t)
	blocked := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, regionRefusal)
	})
	p := newProvider(t, "openai", blocked.URL, provider.StyleOpenAI, 1<<20)
	rt := &retrier{first: Target{Route: "direct"}, second: Target{Transport: &recording{}, Tunnel: true, Route: "egress", Egress: "e1"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, RetryBodyBytes: 100, RegionReroute: true})

	_, rest, _ := provider.SplitPath("/openai/v1/x")
	ex := &exchange{cfg: h.live.Load(), provider: p, rest: rest, target: rt.first}
	req := httptest.NewRequest("POST", "/openai/v1/x", strings.NewReader("{}")).WithContext(context.WithValue(context.Background(), exchangeKey{}, ex))
	req.URL = p.URL(rest, "")
	req.RequestURI = ""
	req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("the kept body is gone") }
	resp, err := h.roundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusForbidden || string(b) != regionRefusal {
		t.Fatalf("status %d body %q err %v", resp.StatusCode, b, err)
	}
}

// TestInformationalResponsesDropped: a provider's 103 Early Hints never
// reaches the client (its headers would pass unfiltered), and the final
// response keeps the mesh's own headers.
func TestInformationalResponsesDropped(t *testing.T) {
	checkLeaks(t)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.Header().Set("X-Mesh-Route", "forged")
		w.Header().Set("Access-Control-Allow-Origin", "https://evil.example")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Del("X-Mesh-Route")
		w.Header().Del("Access-Control-Allow-Origin")
		io.WriteString(w, "ok")
	})
	p := newProvider(t, "openai", up.URL, provider.StyleOpenAI, 1<<20)
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: routeTo(Target{Route: "direct"})})
	srv, client := front(t, h)

	var got1xx []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		got1xx = append(got1xx, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL+"/openai/v1/models", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	if len(got1xx) != 0 {
		t.Errorf("the client got 1xx responses %v", got1xx)
	}
	if resp.Header.Get(HeaderRequestID) == "" || resp.Header.Get(HeaderRoute) != "direct" {
		t.Errorf("the mesh's headers are missing from the final response: %v", resp.Header)
	}
}

// TestUnaskedUpgradeIs502: a 101 answering a plain request would turn the
// client's connection into a raw pipe to the provider; it is a 502.
func TestUnaskedUpgradeIs502(t *testing.T) {
	checkLeaks(t)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: raw\r\nConnection: Upgrade\r\n\r\nRAW BYTES FROM THE PROVIDER")
		buf.Flush()
		io.Copy(io.Discard, conn) // until the proxy hangs up
	})
	p := newProvider(t, "openai", up.URL, provider.StyleOpenAI, 1<<20)
	for _, tc := range []struct {
		name  string
		route func(t *testing.T) (*httptest.Server, *http.Client)
	}{
		{"direct", func(t *testing.T) (*httptest.Server, *http.Client) {
			return front(t, newHandler(t, Config{Providers: provider.NewRegistry(p), Router: routeTo(Target{Route: "direct"})}))
		}},
		{"tunnel", func(t *testing.T) (*httptest.Server, *http.Client) {
			m := newMeshPair(t, up.URL, 1<<20)
			return m.ingress, m.client
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, client := tc.route(t)
			resp, err := client.Get(srv.URL + "/openai/v1/models")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(HeaderError) != "upstream_protocol" || strings.Contains(string(b), "RAW") {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get(HeaderError), b)
			}
		})
	}
}

// TestLoggedFieldsAreBounded: a client chooses the size of its method, its
// path and its request id, not of the log lines or errors that quote them.
func TestLoggedFieldsAreBounded(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openai", "http://"+closedAddr(t), provider.StyleOpenAI, 1<<20)
	var logs testio.Buffer
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Logger: logs.Logger(), MaxHeaderBytes: 64 << 10})
	srv, _ := front(t, h)
	huge := strings.Repeat("M", 30<<10)
	for _, line := range []string{
		huge + " /openai/v1/models HTTP/1.1",
		"GET /" + strings.Repeat("p", 30<<10) + "/v1/models HTTP/1.1",
	} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, line+"\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode/100 != 4 || len(b) > 1024 {
			t.Errorf("%d with a %d-byte answer", resp.StatusCode, len(b))
		}
	}
	for l := range strings.Lines(logs.String()) {
		if len(l) > 1024 {
			t.Errorf("a %d-byte log line: %.200s...", len(l), l)
		}
	}
}

// TestOpenRouterRefusalReroutes: OpenRouter's own region refusal (not its
// style's, OpenAI's) reroutes a direct request.
func TestOpenRouterRefusalReroutes(t *testing.T) {
	checkLeaks(t)
	p := newProvider(t, "openrouter", "https://openrouter.ai/api", provider.StyleOpenAI, 1<<20)
	refusing := roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		body := `{"error":{"code":403,"message":"This model is not available in your region."}}`
		return &http.Response{StatusCode: http.StatusForbidden, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
	})
	rec := &recording{}
	rt := &retrier{first: Target{Route: "direct"}, second: Target{Transport: rec, Tunnel: true, Route: "egress", Egress: "e1", Reroute: "region-block"}}
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), Router: rt, Transport: refusing, RetryBodyBytes: 100, RegionReroute: true})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/openrouter/v1/chat/completions", strings.NewReader("{}")))
	if w.Code != 200 || w.Header().Get(HeaderReroute) != "region-block" || len(rec.bodies) != 1 {
		t.Fatalf("status %d reroute %q, %d rerouted", w.Code, w.Header().Get(HeaderReroute), len(rec.bodies))
	}
}
