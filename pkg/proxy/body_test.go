package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/llmesh/llmesh/internal/testio"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/provider"
)

func TestPaceWait(t *testing.T) {
	p := pace{idle: 30 * time.Second, minRate: 4096}
	tests := []struct {
		n      int64
		waited time.Duration
		want   time.Duration
		byRate bool
	}{
		{0, 0, 30 * time.Second, false},                                       // the grace period
		{0, 10 * time.Second, 20 * time.Second, true},                         // nothing yet: the grace runs out
		{0, 30 * time.Second, 0, true},                                        // nothing within the grace: cut
		{4096 * 60, 30 * time.Second, 30 * time.Second, false},                // a minute's worth: idle bounds
		{4096 * 60, 80 * time.Second, 10 * time.Second, true},                 // falling behind the rate
		{4096 * 60, 95 * time.Second, -5 * time.Second, true},                 // behind: cut at once
		{2048, 0, 30 * time.Second, false},                                    // half a second's worth, at once
		{1 << 62, 0, 30 * time.Second, false},                                 // no overflow
		{25 << 20, 6400 * time.Second, 30 * time.Second, false},               // 25 MiB at exactly the rate
		{25 << 20, 6410 * time.Second, 20 * time.Second, true},                // 25 MiB, a little behind
		{100, 29*time.Second + 900*time.Millisecond, 124414062, true},         // 100 bytes buy 24.4 ms
		{4096, time.Minute, 30*time.Second + time.Second - time.Minute, true}, // far behind
	}
	for _, tt := range tests {
		got, byRate := p.wait(tt.n, tt.waited)
		if got != tt.want || byRate != tt.byRate {
			t.Errorf("wait(%d, %s) = %s, %v; want %s, %v", tt.n, tt.waited, got, byRate, tt.want, tt.byRate)
		}
	}
	if got, byRate := (pace{idle: time.Second}).wait(0, time.Hour); got != time.Second || byRate {
		t.Errorf("idle alone: %s, %v", got, byRate)
	}
}

// pipeRequest is a request whose body is an io.Pipe, as on an egress: the
// server has no read deadlines for it, so the pace runs on a timer.
func pipeRequest(t *testing.T, p pace) (*pacedBody, *io.PipeWriter) {
	pr, pw := io.Pipe()
	r := httptest.NewRequest("POST", "/p/x", nil)
	r.Body = pr
	b := paceBody(new(pacedBody), httptest.NewRecorder(), r, p)
	if b == nil || b.deadlines {
		t.Fatal("a pipe body is not paced by a timer")
	}
	return b, pw
}

// readAll reads b to its end and reports what it got and when it ended.
func readAll(b io.Reader) (int64, time.Duration, error) {
	start := time.Now()
	n, err := io.Copy(io.Discard, b)
	return n, time.Since(start), err
}

func TestPacedBodyTimer(t *testing.T) {
	p := pace{idle: 2 * time.Second, minRate: 1000}
	tests := []struct {
		name   string
		write  func(w *io.PipeWriter) // the client
		read   func(b io.Reader) (int64, time.Duration, error)
		want   int64
		reason string // "" for a body that arrives in full
		at     time.Duration
	}{
		{"stalls one byte short", func(w *io.PipeWriter) {
			w.Write(make([]byte, 999))
		}, readAll, 999, "no data for 2s", 2 * time.Second},
		{"never sends", func(w *io.PipeWriter) {}, readAll, 0, "no data for 2s", 2 * time.Second},
		{"trickles below the rate", func(w *io.PipeWriter) {
			for {
				if _, err := w.Write([]byte{'x'}); err != nil {
					return
				}
				time.Sleep(time.Second) // 1 byte/s, never idle for 2 s
			}
		}, readAll, 3, "more slowly than 1000 bytes/s", 2*time.Second + 3*time.Millisecond},
		{"keeps the rate", func(w *io.PipeWriter) {
			for range 10 {
				w.Write(make([]byte, 1000))
				time.Sleep(time.Second)
			}
			w.Close()
		}, readAll, 10000, "", 10 * time.Second},
		{"slow provider is not the client's fault", func(w *io.PipeWriter) {
			w.Write(make([]byte, 10))
			w.Write(make([]byte, 10))
			w.Close()
		}, func(b io.Reader) (int64, time.Duration, error) {
			// The provider takes its time between reads (backpressure).
			start := time.Now()
			var n int64
			buf := make([]byte, 10)
			for {
				k, err := b.Read(buf)
				n += int64(k)
				if err != nil {
					if err == io.EOF {
						err = nil
					}
					return n, time.Since(start), err
				}
				time.Sleep(time.Minute)
			}
		}, 20, "", 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, pw := pipeRequest(t, p)
				wrote := make(chan struct{})
				go func() {
					defer close(wrote)
					tt.write(pw)
				}()
				n, took, err := tt.read(b)
				b.Close()
				<-wrote
				if n != tt.want {
					t.Errorf("read %d bytes, want %d", n, tt.want)
				}
				switch {
				case tt.reason == "" && err != nil:
					t.Errorf("a body that kept its pace failed: %v", err)
				case tt.reason != "" && (!errors.Is(err, ErrBodyTimeout) || !strings.Contains(err.Error(), tt.reason)):
					t.Errorf("error %v, want a body timeout saying %q", err, tt.reason)
				case tt.reason != "" && b.timedOut() == nil:
					t.Error("the body does not report its timeout")
				}
				if took != tt.at {
					t.Errorf("ended after %s, want %s", took, tt.at)
				}
			})
		})
	}
}

// Close stops the timer: nothing fires after the request ended.
func TestPacedBodyCloseStopsTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, pw := pipeRequest(t, pace{idle: time.Second})
		go pw.Write([]byte("abc"))
		buf := make([]byte, 3)
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatal(err)
		}
		b.Close()
		time.Sleep(time.Hour)
		if b.timedOut() != nil {
			t.Fatal("a closed body timed out")
		}
	})
}

// stalledClient declares a body of declared bytes, sends only sent of them
// and then holds the body open for at most 10 s (or until the test ends).
func stalledClient(t *testing.T, client *http.Client, url string, declared, sent int) (*http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "POST", url, testio.NewStallingBody(ctx, sent))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(declared)
	return client.Do(req)
}

// h2cFront serves h over cleartext HTTP/2 only and returns a client for it.
func h2cFront(t testing.TB, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return s, &http.Client{Transport: tr}
}

// TestStalledBodyDirect: a client that stops sending its body one byte
// short gets 408 request_body_timeout in its provider's shape, its slot is
// freed and the provider call is cancelled; on HTTP/1 and h2c, for bodies
// streamed to the provider and bodies kept for a retry.
func TestStalledBodyDirect(t *testing.T) {
	checkLeaks(t)
	for _, proto := range []string{"HTTP/1.1", "h2c"} {
		for _, kept := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s kept=%v", proto, kept), func(t *testing.T) {
				upEnded := make(chan error, 1)
				up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
					_, err := io.Copy(io.Discard, r.Body)
					upEnded <- err
				})
				p := newProvider(t, "anthropic", up.URL, provider.StyleAnthropic, 0)
				cfg := Config{Providers: provider.NewRegistry(p), MaxInFlight: 10,
					BodyIdleTimeout: 200 * time.Millisecond, MinBodyRate: 1}
				if kept {
					cfg.Router = &retrier{first: Target{Route: "direct"}}
					cfg.RegionReroute, cfg.RetryBodyBytes = true, 1<<20
				}
				h := newHandler(t, cfg)
				serve := front
				if proto == "h2c" {
					serve = h2cFront
				}
				srv, client := serve(t, h)
				srv.Config.ErrorLog = quietLog()

				// Larger than SmallBody, so it streams to the provider.
				resp, err := stalledClient(t, client, srv.URL+"/anthropic/v1/messages", 2*SmallBody, 2*SmallBody-1)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusRequestTimeout || resp.Proto != map[string]string{"HTTP/1.1": "HTTP/1.1", "h2c": "HTTP/2.0"}[proto] {
					b, _ := io.ReadAll(resp.Body)
					t.Fatalf("%s status %d: %s", resp.Proto, resp.StatusCode, b)
				}
				e := decodeError(t, resp.Body)
				checkShape(t, e, provider.StyleAnthropic, 408, "request_body_timeout")
				if resp.Header.Get("X-Mesh-Error") != "request_body_timeout" || !strings.Contains(e.Error.Message, "no data for 200ms") {
					t.Errorf("error %+v, header %q", e, resp.Header.Get("X-Mesh-Error"))
				}
				if !kept {
					if err := recv(t, upEnded, 5*time.Second, "the provider call to end"); err == nil {
						t.Error("the provider got a complete body")
					}
				}
				wait.For(t, 5*time.Second, func() error {
					if n := h.inflight.Load(); n != 0 {
						return fmt.Errorf("%d requests still in flight", n)
					}
					if n := h.replay.used.Load(); n != 0 {
						return fmt.Errorf("%d bytes still kept for replay", n)
					}
					return nil
				})
			})
		}
	}
}

// holding is a tunnel that takes every request and answers once released,
// noting whether each body was kept for a retry.
type holding struct {
	mu      sync.Mutex
	arrived int
	kept    int
	release chan struct{}
}

func (f *holding) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	f.mu.Lock()
	f.arrived++
	if req.GetBody != nil {
		if _, err := req.GetBody(); err == nil { // the body read, a replay could follow
			f.kept++
		}
	}
	f.mu.Unlock()
	<-f.release
	return &http.Response{StatusCode: 200, Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(strconv.Itoa(len(body))))}, nil
}

func (f *holding) counts() (arrived, kept int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.arrived, f.kept
}

// TestReplayBudget: bodies kept for a retry never hold more than the budget
// together; past it, requests stream without being kept and still succeed;
// the memory is released when they end.
func TestReplayBudget(t *testing.T) {
	checkLeaks(t)
	const size, requests = 10 << 10, 6
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			p := newProvider(t, "openai", "https://api.example", provider.StyleOpenAI, 0)
			tr := &holding{release: make(chan struct{})}
			var freed sync.Once
			free := func() { freed.Do(func() { close(tr.release) }) }
			t.Cleanup(free)
			budget := int64(2*size + 2) // two declared bodies, each reserving one byte more
			if chunked {
				budget = 2 * keepChunk // a chunked body reserves its buffer as it grows
			}
			h := newHandler(t, Config{Providers: provider.NewRegistry(p),
				Router:         &retrier{first: Target{Transport: tr, Tunnel: true, Route: "egress", Egress: "e1"}},
				RetryBodyBytes: 1 << 20, RetryBodyBudget: budget})
			var wg sync.WaitGroup
			codes := make(chan int, requests)
			for range requests {
				wg.Go(func() {
					var body io.Reader = strings.NewReader(strings.Repeat("x", size))
					if chunked {
						body = io.MultiReader(body)
					}
					req := httptest.NewRequest("POST", "/openai/v1/chat/completions", body)
					if chunked {
						req.ContentLength = -1
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Body.String() != strconv.Itoa(size) {
						t.Errorf("the provider got %s bytes, want %d", rec.Body, size)
					}
					codes <- rec.Code
				})
			}
			wait.For(t, 5*time.Second, func() error {
				if arrived, _ := tr.counts(); arrived != requests {
					return fmt.Errorf("%d of %d requests arrived", arrived, requests)
				}
				return nil
			})
			if used := h.replay.used.Load(); used > budget || used == 0 {
				t.Errorf("%d bytes kept for replay, budget %d", used, budget)
			}
			if _, kept := tr.counts(); kept != 2 {
				t.Errorf("%d bodies kept, want the 2 that fit in the budget", kept)
			}
			free()
			wg.Wait()
			close(codes)
			for code := range codes {
				if code != 200 {
					t.Errorf("status %d, want 200 for every request", code)
				}
			}
			if used := h.replay.used.Load(); used != 0 {
				t.Errorf("%d bytes still reserved after every request ended", used)
			}
		})
	}
}

// TestClientCap: past max_in_flight_per_client, a client address gets 429
// in its provider's shape with Retry-After; other addresses still pass.
func TestClientCap(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	var held atomic.Int32
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("hold") != "" {
			held.Add(1)
			<-release
		}
	})
	var freed sync.Once
	free := func() { freed.Do(func() { close(release) }) }
	t.Cleanup(free) // before the upstream closes, even when the test fails
	p := newProvider(t, "gemini", up.URL, provider.StyleGemini, 0)
	h := newHandler(t, Config{Providers: provider.NewRegistry(p), MaxInFlightPerClient: 2})
	srv, client := front(t, h)
	get := func(client *http.Client, query string) (*http.Response, error) {
		resp, err := client.Get(srv.URL + "/gemini/v1beta/models?" + query)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { get(client, "hold=1") })
	}
	wait.For(t, 5*time.Second, func() error {
		if n := held.Load(); n != 2 {
			return fmt.Errorf("%d requests in flight from 127.0.0.1", n)
		}
		return nil
	})
	resp, err := client.Get(srv.URL + "/gemini/v1beta/models")
	if err != nil {
		t.Fatal(err)
	}
	e := decodeError(t, resp.Body)
	resp.Body.Close()
	checkShape(t, e, provider.StyleGemini, 429, "client_over_capacity")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another address is not held back by this one.
	other := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	defer other.CloseIdleConnections()
	if resp, err := get(&http.Client{Transport: other}, ""); err != nil || resp.StatusCode != 200 {
		t.Errorf("another client: %v %v", resp, err)
	}
	free()
	wg.Wait()
	if resp, err := get(client, ""); err != nil || resp.StatusCode != 200 {
		t.Errorf("after its requests ended: %v %v", resp, err)
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5000":             "127.0.0.1",
		"[::ffff:10.1.2.3]:80":       "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:1":           "fe80::/64",
		"pipe":                       "pipe",
		"":                           "",
	} {
		if got := clientKey(addr); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}
