package proxy

import (
	"io"
	"mime"
	"net/http"
	"strings"
)

// relay serves a request that came through the tunnel, on an egress. It
// calls the provider's transport itself instead of through a second
// httputil.ReverseProxy (whose request clone, wrappers and per-request
// hooks cost the egress about a fifth of its CPU per exchange): the
// request is this exchange's own, built by the tunnel server for it alone,
// so it is rewritten in place. Everything else is what the ingress's
// ReverseProxy does: the same rewrite (hop-by-hop and client-identifying
// headers removed, credentials handled), the same response hook and error
// answer, flushes after each write of a stream, trailers passed on, and a
// body that breaks mid-way aborts the response.
func (h *Handler) relay(w http.ResponseWriter, req *http.Request) {
	if req.ContentLength == 0 {
		req.Body = nil // a transport retry needs no body (golang/go#16036)
	}
	if req.Body != nil {
		// The transport closes what it is given; the handler closes the
		// body itself, after the exchange.
		req.Body = noCloseBody{req.Body}
	}
	req.Close = false
	req.RequestURI = ""      // a client request must not carry one
	rewriteRequest(req, req) // the query as the client sent it, as on the ingress
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header.Set("User-Agent", "") // not Go's own
	}

	resp, err := h.roundTrip(req)
	if err != nil {
		h.handleError(w, req, err)
		return
	}
	modifyResponse(resp)
	header := w.Header()
	for k, vs := range resp.Header {
		header[k] = append(header[k], vs...)
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		header.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp); err != nil {
		resp.Body.Close()
		h.log.Debug("relay: the response broke off", "err", scrub(err))
		panic(http.ErrAbortHandler)
	}
	resp.Body.Close() // now: it fills resp.Trailer
	if len(resp.Trailer) == announced {
		for k, vs := range resp.Trailer {
			header[k] = append(header[k], vs...)
		}
		return
	}
	for k, vs := range resp.Trailer {
		for _, v := range vs {
			header.Add(http.TrailerPrefix+k, v)
		}
	}
}

// copyBody copies resp's body to w, flushing after each write when the
// response streams (SSE, or no length), as ReverseProxy does.
func copyBody(w http.ResponseWriter, resp *http.Response) error {
	stream := resp.ContentLength == -1
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/event-stream" {
		stream = true
	}
	rc := http.NewResponseController(w)
	pool := bufferFor(resp.ContentLength) // sized by the response, as on the ingress
	buf := pool.Get()
	defer pool.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if stream {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// noCloseBody hides Close from the transport.
type noCloseBody struct{ io.Reader }

func (noCloseBody) Close() error { return nil }
