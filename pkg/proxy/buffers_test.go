package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/provider"
)

// TestBufferFor: streams get the small buffer they hold for their whole
// life, long bodies the large one.
func TestBufferFor(t *testing.T) {
	for _, tc := range []struct {
		contentLength int64
		want          int
	}{
		{-1, streamBufferSize},
		{0, copyBufferSize},
		{600, copyBufferSize},
		{bulkBufferSize - 1, copyBufferSize},
		{bulkBufferSize, bulkBufferSize},
		{10 << 20, bulkBufferSize},
	} {
		b := &exchangeBuffers{contentLength: tc.contentLength}
		buf := b.Get()
		if len(buf) != tc.want {
			t.Errorf("Content-Length %d: a buffer of %d bytes, want %d", tc.contentLength, len(buf), tc.want)
		}
		if p := poolOf(buf); p.size != tc.want {
			t.Errorf("a buffer of %d bytes goes back to the pool of %d", len(buf), p.size)
		}
		b.Put(buf)
	}
	// A buffer of another size (the ReverseProxy never returns one) is dropped.
	(&exchangeBuffers{}).Put(make([]byte, 100))
	var _ httputil.BufferPool = &exchangeBuffers{}
}

// TestStreamCopiedInSmallReads: an event stream is copied through the small
// stream buffer, so a 20 KiB event reaches the client in chunks of at most
// streamBufferSize (it was 8 KiB for every response); a body of known
// length arrives whole.
func TestStreamCopiedInSmallReads(t *testing.T) {
	event := "data: " + strings.Repeat("x", 20<<10) + "\n\n"
	u := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/bulk" {
			w.Header().Set("Content-Length", strconv.Itoa(len(event)))
		} else {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.Write([]byte(event))
	})
	h := newHandler(t, Config{
		Providers: provider.NewRegistry(newProvider(t, "p", u.URL, provider.StyleOpenAI, 1<<20)),
		Router:    routeTo(Target{Route: "direct"}),
	})
	srv, _ := front(t, h)
	chunks := rawChunks(t, srv.Listener.Addr().String(), "/p/v1/stream")
	if len(chunks) < 2 || total(chunks) != len(event) {
		t.Fatalf("chunks %v: want the %d-byte event in several", chunks, len(event))
	}
	for _, n := range chunks {
		if n > streamBufferSize {
			t.Errorf("a chunk of %d bytes: the stream was copied through a buffer larger than %d (chunks %v)", n, streamBufferSize, chunks)
		}
	}
	if chunks := rawChunks(t, srv.Listener.Addr().String(), "/p/v1/bulk"); len(chunks) != 1 || chunks[0] != len(event) {
		t.Errorf("known length: got %v, want one body of %d bytes", chunks, len(event))
	}
}

// rawChunks sends a request over a raw connection and returns the sizes of
// the response's chunks (or, for a body of known length, its length).
func rawChunks(t *testing.T, addr, path string) []int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", path)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.ContentLength >= 0 {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return []int{b.Len()}
	}
	// http.ReadResponse decodes chunking: read the raw stream instead.
	var sizes []int
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("chunk size: %v (after %v)", err, sizes)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			t.Fatalf("chunk size %q: %v", line, err)
		}
		if n == 0 {
			return sizes
		}
		sizes = append(sizes, int(n))
		if _, err := br.Discard(int(n) + 2); err != nil {
			t.Fatal(err)
		}
	}
}

func total(ns []int) (sum int) {
	for _, n := range ns {
		sum += n
	}
	return sum
}

// TestResponseHeadBeyondReadBuffer: a provider's response head and body
// larger than the provider connection's read buffer pass whole, on a
// connection that is then reused.
func TestResponseHeadBeyondReadBuffer(t *testing.T) {
	long := strings.Repeat("v", 3*upstreamReadBuffer)
	body := strings.Repeat("b", 5*upstreamReadBuffer)
	u := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Long", long)
		for i := range 40 {
			w.Header().Set("X-Ratelimit-"+strconv.Itoa(i), "12345")
		}
		w.Write([]byte(body))
	})
	h := newHandler(t, Config{
		Providers: provider.NewRegistry(newProvider(t, "p", u.URL, provider.StyleOpenAI, 1<<20)),
		Router:    routeTo(Target{Route: "direct"}),
	})
	srv, client := front(t, h)
	for range 3 {
		resp, err := client.Get(srv.URL + "/p/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Long") != long || resp.Header.Get("X-Ratelimit-39") != "12345" || b.String() != body {
			t.Fatalf("status %d, X-Long of %d bytes, body of %d bytes", resp.StatusCode, len(resp.Header.Get("X-Long")), b.Len())
		}
	}
}
