package fakeprovider

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
)

// GzipPayload is the uncompressed body of .../echo/gzip.
var GzipPayload = []byte(`{"message":"` + strings.Repeat("this body was gzip-compressed by the fake provider; ", 20) + `","ok":true}` + "\n")

// RedirectLocation is where .../echo/redirect points.
const RedirectLocation = "https://example.invalid/elsewhere"

// matchEcho matches the echo routes by path suffix, under any prefix.
func matchEcho(path string) (route, bool) {
	switch {
	case strings.HasSuffix(path, "/echo/headers"):
		return route{openAI, false, serveEchoHeaders}, true
	case strings.HasSuffix(path, "/echo/upload"):
		return route{openAI, false, serveEchoUpload}, true
	case strings.HasSuffix(path, "/echo/gzip"):
		return route{openAI, false, serveEchoGzip}, true
	case strings.HasSuffix(path, "/echo/redirect"):
		return route{openAI, false, serveEchoRedirect}, true
	}
	i := strings.LastIndex(path, "/echo/status/")
	if i < 0 {
		return route{}, false
	}
	code := path[i+len("/echo/status/"):]
	if code == "" || strings.Contains(code, "/") {
		return route{}, false
	}
	return route{openAI, false, func(x *exchange) { serveEchoStatus(x, code) }}, true
}

// serveEchoHeaders reflects the request line and headers (names lower-cased).
func serveEchoHeaders(x *exchange) {
	headers := make(map[string][]string, len(x.r.Header))
	for k, v := range x.r.Header {
		k = strings.ToLower(k)
		headers[k] = append(headers[k], v...)
	}
	writeJSON(x.w, http.StatusOK, obj{
		"method":    x.r.Method,
		"path":      x.r.URL.Path,
		"raw_query": x.r.URL.RawQuery,
		"host":      x.r.Host,
		"headers":   headers,
	})
}

// serveEchoUpload reports the size and hash of the body, which was hashed
// while it streamed in.
func serveEchoUpload(x *exchange) {
	if x.r.Method != http.MethodPost && x.r.Method != http.MethodPut {
		x.w.Header().Set("Allow", "POST, PUT")
		openAI.writeError(x.w, http.StatusMethodNotAllowed, "method "+x.r.Method+" not allowed")
		return
	}
	writeJSON(x.w, http.StatusOK, obj{
		"bytes":        x.bodyBytes,
		"sha256":       x.bodySHA256,
		"content_type": x.r.Header.Get("Content-Type"),
	})
}

// serveEchoGzip sends GzipPayload compressed, whatever the client accepts.
func serveEchoGzip(x *exchange) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(GzipPayload)
	_ = zw.Close()
	h := x.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Encoding", "gzip")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	x.w.WriteHeader(http.StatusOK)
	_, _ = x.w.Write(b.Bytes())
}

func serveEchoRedirect(x *exchange) {
	x.w.Header().Set("Location", RedirectLocation)
	x.w.WriteHeader(http.StatusFound)
}

// serveEchoStatus answers the status in the path with an OpenAI error body.
func serveEchoStatus(x *exchange, code string) {
	status, err := parseStatus(code)
	if err != nil {
		openAI.writeError(x.w, http.StatusBadRequest, "echo/status: "+err.Error())
		return
	}
	openAI.writeError(x.w, status, "fake provider: status "+code+" requested by path")
}
