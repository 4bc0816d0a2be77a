package fakeprovider

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestEchoHeaders(t *testing.T) {
	srv := start(t)
	for _, path := range []string{"/echo/headers", "/v1/echo/headers", "/openai/v1/echo/headers"} {
		res := do(t, http.MethodPatch, srv.URL+path+"?a=1&b=2", "", map[string]string{"X-Custom": "v", "Authorization": "Bearer t"})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, res.StatusCode)
		}
		v := decodeBody(t, res)
		if get(v, "method") != "PATCH" || get(v, "path") != path || get(v, "raw_query") != "a=1&b=2" ||
			get(v, "host") != strings.TrimPrefix(srv.URL, "http://") {
			t.Errorf("%s: body %v", path, v)
		}
		if get(v, "headers", "x-custom", 0) != "v" || get(v, "headers", "authorization", 0) != "Bearer t" {
			t.Errorf("%s: headers %v", path, get(v, "headers"))
		}
	}
}

func TestEchoUpload(t *testing.T) {
	srv := start(t)
	body := make([]byte, 3<<20+17)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/v1/echo/upload", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		v := decodeBody(t, res)
		res.Body.Close()
		if get(v, "bytes") != float64(len(body)) || get(v, "sha256") != hex.EncodeToString(sum[:]) ||
			get(v, "content_type") != "application/octet-stream" {
			t.Errorf("%s: body %v", method, v)
		}
	}
	reqs := srv.Requests()
	if reqs[0].BodyBytes != int64(len(body)) || reqs[0].BodySHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("recorded %d bytes, sha %s", reqs[0].BodyBytes, reqs[0].BodySHA256)
	}
	if res := do(t, http.MethodGet, srv.URL+"/echo/upload", "", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", res.StatusCode)
	}
}

func TestEchoGzip(t *testing.T) {
	srv := start(t)
	// A transport that neither asks for gzip nor decodes it: the body must
	// arrive compressed anyway.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	res, err := client.Get(srv.URL + "/anthropic/echo/gzip")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, GzipPayload) {
		t.Errorf("payload %q, want %q", got, GzipPayload)
	}
}

func TestEchoRedirect(t *testing.T) {
	srv := start(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	res, err := client.Get(srv.URL + "/v1/echo/redirect")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != RedirectLocation {
		t.Errorf("status %d, location %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestEchoStatus(t *testing.T) {
	srv := start(t)
	tests := []struct {
		path   string
		status int
	}{
		{"/echo/status/500", 500},
		{"/v1/echo/status/429", 429},
		{"/v1/echo/status/204", 204},
		{"/v1/echo/status/99", 400},
		{"/v1/echo/status/abc", 400},
	}
	for _, tt := range tests {
		res := do(t, http.MethodGet, srv.URL+tt.path, "", nil)
		if res.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.path, res.StatusCode, tt.status)
			continue
		}
		if tt.status == http.StatusNoContent {
			continue
		}
		v := decodeBody(t, res)
		if msg, _ := get(v, "error", "message").(string); msg == "" || get(v, "error", "type") == nil {
			t.Errorf("%s: body %v", tt.path, v)
		}
		if tt.status == http.StatusTooManyRequests && res.Header.Get("Retry-After") != "1" {
			t.Errorf("%s: no Retry-After", tt.path)
		}
	}
}

func TestNotFound(t *testing.T) {
	srv := start(t)
	for _, path := range []string{"/v1/nope", "/v1beta/models/x:countTokens", "/v1/echo/status/"} {
		res := do(t, http.MethodPost, srv.URL+path, "{}", map[string]string{"x-goog-api-key": "k"})
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, res.StatusCode)
		}
		if v := decodeBody(t, res); get(v, "error", "message") == nil {
			t.Errorf("%s: body %v", path, v)
		}
	}
}
