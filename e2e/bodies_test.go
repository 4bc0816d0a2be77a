package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/role"
)

// h2cClient speaks cleartext HTTP/2 only, the way the measurements
// opened hundreds of streams on one connection.
func h2cClient(t *testing.T) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// stalledUpload declares a body of declared bytes and sends all but the last
// one, then stalls (for at most 20 s). It returns the status the mesh
// answered and its X-Mesh-Error, or the error.
func stalledUpload(t *testing.T, client *http.Client, url string, declared int) (int, string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	body := testio.NewStallingBody(ctx, declared-1)
	req, err := http.NewRequestWithContext(ctx, "POST", url, body)
	if err != nil {
		return 0, "", err
	}
	req.ContentLength = int64(declared)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(proxy.HeaderError), nil
}

// startStalled starts n stalled uploads and returns a channel with how each
// ended ("408 request_body_timeout", or the error).
func startStalled(t *testing.T, n int, client *http.Client, url string, declared int) <-chan string {
	out := make(chan string, n)
	for range n {
		go func() {
			code, meshErr, err := stalledUpload(t, client, url, declared)
			if err != nil {
				out <- err.Error()
				return
			}
			out <- strconv.Itoa(code) + " " + meshErr
		}()
	}
	return out
}

func wantCut(t *testing.T, ended <-chan string, n int) {
	t.Helper()
	for range n {
		select {
		case got := <-ended:
			if got != "408 request_body_timeout" {
				t.Errorf("a stalled upload ended with %q, want 408 request_body_timeout", got)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a stalled upload is still in flight")
		}
	}
}

// TestStalledUploadsDoNotStarve: uploads that stall one byte short fill
// http.max_in_flight only until http.body_idle_timeout cuts them (408);
// then other clients are served again.
func TestStalledUploadsDoNotStarve(t *testing.T) {
	m := newMesh(t)
	n := m.start(nodeSpec{role: role.Ingress, name: "starve", loc: "US", edit: func(c *config.Config) {
		c.HTTP.MaxInFlight = 4
		c.HTTP.BodyIdleTimeout = 1500 * time.Millisecond
	}})
	ended := startStalled(t, 4, h2cClient(t), baseURL(n)+"/openai/v1/echo/upload", 1<<20)
	wait.For(t, 5*time.Second, func() error {
		if a := m.provider.Stats().Active; a != 4 {
			return fmt.Errorf("%d stalled uploads reached the provider", a)
		}
		return nil
	})
	resp, body := get(t, baseURL(n)+"/openai/v1/models")
	wantError(t, resp, body, 503, "over_capacity", "openai")

	wantCut(t, ended, 4)
	wait.For(t, 5*time.Second, func() error {
		if resp, _ := get(t, baseURL(n)+"/openai/v1/models"); resp.StatusCode != 200 {
			return fmt.Errorf("status %d after the stalled uploads were cut", resp.StatusCode)
		}
		if a := m.provider.Stats().Active; a != 0 {
			return fmt.Errorf("the provider still serves %d cut uploads", a)
		}
		return nil
	})
	if _, body := get(t, baseURL(n)+"/metrics"); !strings.Contains(body, "llmesh_replay_bytes 0") {
		t.Error("/metrics has no llmesh_replay_bytes gauge at 0")
	}
}

// TestStalledTunnelUploadFreesEgress: uploads that stall through the tunnel
// take an egress's tunnel.max_streams only until a body timeout cuts them,
// whichever side cuts: the egress (its pipe from the tunnel runs on a
// timer) or the ingress (whose cancelled stream ends the egress's). Then a
// different ingress is served by that egress again.
func TestStalledTunnelUploadFreesEgress(t *testing.T) {
	for _, tc := range []struct {
		name            string
		ingress, egress time.Duration // http.body_idle_timeout of each
	}{
		{"egress cuts", 0, time.Second},
		{"ingress cuts", time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMesh(t)
			pace := func(d time.Duration) func(*config.Config) {
				return func(c *config.Config) {
					c.HTTP.BodyIdleTimeout = d
					if d == 0 {
						c.HTTP.MinBodyRate = 0
					}
				}
			}
			m.start(nodeSpec{role: role.Egress, name: "e1", loc: "US", hint: "wnam", edit: func(c *config.Config) {
				pace(tc.egress)(c)
				c.Tunnel.MaxStreams = 2
			}})
			rules := []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}}
			a := m.start(nodeSpec{role: role.Ingress, name: "hk-a", loc: "HK", rules: rules, providerURL: closedURL(t), edit: pace(tc.ingress)})
			b := m.start(nodeSpec{role: role.Ingress, name: "hk-b", loc: "HK", rules: rules, providerURL: closedURL(t)})
			m.waitMembers(a, "e1")
			m.waitMembers(b, "e1")

			// Larger than routing.retry_body_bytes: streamed, as in the issue.
			ended := startStalled(t, 2, h2cClient(t), baseURL(a)+"/openai/v1/echo/upload", 2<<20)
			wait.For(t, 5*time.Second, func() error {
				if a := m.provider.Stats().Active; a != 2 {
					return fmt.Errorf("%d stalled uploads reached the provider", a)
				}
				return nil
			})
			wait.For(t, 5*time.Second, func() error {
				resp, body := get(t, baseURL(b)+"/openai/v1/models")
				if resp.StatusCode != 503 || resp.Header.Get(proxy.HeaderError) != "egress_overloaded" {
					return fmt.Errorf("another ingress got %d %s, want 503 egress_overloaded", resp.StatusCode, body)
				}
				return nil
			})
			wantCut(t, ended, 2)
			wait.For(t, 10*time.Second, func() error {
				if resp, body := get(t, baseURL(b)+"/openai/v1/models"); resp.StatusCode != 200 {
					return fmt.Errorf("another ingress still gets %d %s", resp.StatusCode, body)
				}
				return nil
			})
		})
	}
}

// TestStreamsPerConnection: an HTTP/2 client is told the cap of
// http.max_streams_per_conn in the server's SETTINGS, and a stream beyond it
// is reset rather than served.
func TestStreamsPerConnection(t *testing.T) {
	m := newMesh(t)
	n := m.start(nodeSpec{role: role.Ingress, name: "streams", loc: "US", edit: func(c *config.Config) {
		c.HTTP.MaxStreamsPerConn = 3
	}})
	conn, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var advertised uint32
	for advertised == 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the server's SETTINGS: %v", err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			v, ok := sf.Value(http2.SettingMaxConcurrentStreams)
			if !ok {
				t.Fatal("the server advertises no MAX_CONCURRENT_STREAMS")
			}
			advertised = v
		}
	}
	if advertised != 3 {
		t.Fatalf("the server advertises MAX_CONCURRENT_STREAMS %d, want 3", advertised)
	}
	if err := fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	// Three uploads that have not finished their bodies hold the three
	// streams; a fourth is one too many.
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for id := uint32(1); id <= 7; id += 2 {
		hb.Reset()
		for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "x"},
			{":path", "/openai/v1/echo/upload"}, {"content-length", "10"}} {
			enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no reset of the stream beyond the cap: %v", err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			if id := rst.Header().StreamID; id != 7 {
				t.Fatalf("stream %d reset (%v), want only stream 7", id, rst.ErrCode)
			}
			return
		}
		if h, ok := f.(*http2.HeadersFrame); ok {
			t.Fatalf("stream %d answered before its body was sent", h.StreamID)
		}
	}
}

// TestClientCapE2E: http.max_in_flight_per_client answers 429 in the
// provider's shape once one address has that many requests in flight.
func TestClientCapE2E(t *testing.T) {
	m := newMesh(t)
	n := m.start(nodeSpec{role: role.Ingress, name: "percap", loc: "US", edit: func(c *config.Config) {
		c.HTTP.MaxInFlightPerClient = 1
	}})
	release := m.holdRequest(t, n)
	resp, body := get(t, baseURL(n)+"/anthropic/v1/models")
	wantError(t, resp, body, 429, "client_over_capacity", "anthropic")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	release()
}
