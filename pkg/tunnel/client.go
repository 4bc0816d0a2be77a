package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// reconnectBackoff paces reconnection to an egress that gossip still lists.
var reconnectBackoff = backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// DialConfig says how an ingress reaches egress nodes.
type DialConfig struct {
	Token string      // shared tunnel token, sent with every stream
	TLS   *tls.Config // nil dials in plaintext (tunnel.insecure)
	// TLSFor, when set, gives the TLS config for one egress (Pool): mutual
	// TLS that accepts only the certificate naming that node and hint.
	TLSFor    func(Endpoint) *tls.Config
	Keepalive Keepalive
	// AcceptTimeout bounds the wait for an egress to accept an exchange
	// (its stream headers) once the stream is open; past it the exchange
	// is cancelled and may go to another egress (see awaitAcceptance).
	// 0: no bound, the connection's keepalive ends the wait.
	AcceptTimeout time.Duration
	Logger        *slog.Logger
	// OnEject, when set, is told each time a connection is ejected after
	// a stream failed before the egress took it (why: Reason), for metrics.
	OnEject func(reason string)

	dialOptions []grpc.DialOption // more, for tests (a stats handler)
}

// Conn is an ingress's long-lived connection to one egress node. It is an
// http.RoundTripper for llmesh:// requests; each round trip is one stream.
type Conn struct {
	Name string // egress node name
	Addr string // tunnel address

	endpoint Endpoint // what the pool dialled
	onEject  func(reason string)

	acceptTimeout time.Duration
	// elsewhere, set by the pool, reports whether another egress of this
	// one's hint could take an exchange: only then is an exchange not
	// accepted in time moved (nil: always).
	elsewhere func() bool

	cc       *grpc.ClientConn
	client   tunnelv1.TunnelClient
	bulk     bulkConn
	newCC    func() (*grpc.ClientConn, error) // another connection to this egress, as cc
	inflight atomic.Int64
	retired  atomic.Bool
	// endInHead: the egress said it reads a whole request in its head
	// (see wholeBody); learnt from its stream headers.
	endInHead atomic.Bool
	close     sync.Once
	// Passive ejection after refusals: count in a row, and until when.
	ejected      atomic.Int64
	ejectedUntil atomic.Int64
}

// Dial opens a connection to the egress at addr and starts connecting at
// once, so the first request does not pay for the handshake.
func Dial(name, addr string, cfg DialConfig) (*Conn, error) { return dial(name, addr, cfg, true) }

// dial opens a connection that connects now, or on first use when !connect.
func dial(name, addr string, cfg DialConfig, connect bool) (*Conn, error) {
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(cfg.TLS)
	}
	ka := cfg.Keepalive.orDefault()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: ka.Interval, Timeout: ka.Timeout, PermitWithoutStream: true,
		}),
		// grpc-go closes a channel after 30 idle minutes; the next request
		// would pay the TCP and TLS handshakes again (2–3 round trips across
		// an ocean). The keepalive pings are cheap; keep the connection.
		grpc.WithIdleTimeout(0),
		// While gossip lists the egress, try again at least every second:
		// grpc-go's backoff grows to 2 minutes, and an egress that restarts
		// at the same address must be back in rotation at once. A dead one
		// leaves the pool when gossip declares it so.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: 20 * time.Second}),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithContextDialer(dialTCP),
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCredentials{token: cfg.Token, secure: cfg.TLS != nil}))
	}
	opts = append(opts, cfg.dialOptions...)
	newCC := func() (*grpc.ClientConn, error) { return grpc.NewClient("passthrough:///"+addr, opts...) }
	cc, err := newCC()
	if err != nil {
		return nil, fmt.Errorf("tunnel: dial %s at %s: %w", name, addr, err)
	}
	if connect {
		cc.Connect()
	}
	return &Conn{Name: name, Addr: addr, cc: cc, client: tunnelv1.NewTunnelClient(cc), newCC: newCC, onEject: cfg.OnEject,
		acceptTimeout: cfg.AcceptTimeout}, nil
}

// InFlight is the number of exchanges open on this connection.
func (c *Conn) InFlight() int64 { return c.inflight.Load() }

// ready reports whether the connection is up, so a request pays no handshake.
func (c *Conn) ready() bool { return c.cc.GetState() == connectivity.Ready }

// wake reconnects a connection that lost its egress: grpc-go leaves it
// idle until a stream wants it, and a ready connection wins every pick
// against it, so no stream ever would.
func (c *Conn) wake() { wakeIdle(c.cc) }

// wakeIdle makes an idle connection connect: grpc-go leaves a dropped
// connection idle until a stream uses it.
func wakeIdle(cc *grpc.ClientConn) {
	if cc.GetState() == connectivity.Idle {
		cc.Connect()
	}
}

// Usable reports whether the connection is worth trying: not failed, not
// closed, not ejected after a recent refusal.
func (c *Conn) Usable() bool {
	switch c.cc.GetState() {
	case connectivity.TransientFailure, connectivity.Shutdown:
		return false
	}
	if until := c.ejectedUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false
	}
	return !c.retired.Load()
}

// notSent marks err as a failure before the egress took the exchange (so
// the request may go elsewhere) and ejects this connection for a while:
// 250 ms after the first refusal, doubling up to 30 s, until one succeeds.
// A failed stream is a faster signal than gossip declaring the node dead.
func (c *Conn) notSent(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err // the client gave up: not the egress's fault
	}
	c.eject(err)
	return &NotSentError{Egress: c.Name, Err: err}
}

// eject keeps new requests off this connection for a while: 250 ms after
// the first failure, doubling up to 30 s, until an exchange succeeds.
func (c *Conn) eject(err error) {
	n := min(c.ejected.Add(1), 8)
	backoff := min(250*time.Millisecond<<(n-1), 30*time.Second)
	c.ejectedUntil.Store(time.Now().Add(backoff).UnixNano())
	if c.onEject != nil {
		c.onEject(Reason(err))
	}
}

// accepted waits for the egress's stream headers and learns from them
// whether the egress reads whole requests in their heads. grpc-go's Header
// returns nil metadata, not an error, when the stream ended without any.
func (c *Conn) accepted(stream tunnelv1.Tunnel_ExchangeClient) bool {
	md, _ := stream.Header()
	if md == nil {
		return false
	}
	// Every answer counts, not only the first: an egress replaced at the
	// same address by an older version stops getting whole requests.
	if reads := slices.Contains(md.Get(endInHeadKey), "1"); reads != c.endInHead.Load() {
		c.endInHead.Store(reads)
	}
	return true
}

// errNotAccepted is the cause of a stream cancelled because the egress did
// not accept it within tunnel.accept_timeout.
var errNotAccepted = fmt.Errorf("tunnel: %w: the egress did not accept the exchange within tunnel.accept_timeout", ErrUnavailable)

// awaitAcceptance waits for the egress to accept the exchange: its stream
// headers, which it sends the moment the stream arrives, before it reads
// the request head and so before it calls the provider. It reports whether
// they came, and whether the wait ran out first (late): then the stream is
// cancelled, and the exchange may be sent to another egress. An exchange
// that could not be sent again (movable false: its body was not kept for
// a retry) waits without a deadline: cancelling it would only fail it.
//
// The deadline protects against an egress that went silent (a host lost, a
// link cut with no FIN or RST): without it, the exchange would wait for the
// keepalive to give up on the connection (tunnel.keepalive plus
// tunnel.keepalive_timeout, 20 s by default). It does not make a duplicate
// impossible. The egress calls the provider without waiting for anything
// after its headers, and checks the stream's context just before the call;
// the provider is called twice only if the egress's headers take longer
// than accept_timeout to arrive on a connection that still delivers them,
// and the egress starts its provider call before this side's cancellation
// (RST_STREAM, sent at the deadline) reaches it: a round trip that took
// more than accept_timeout (1 s by default: retransmissions, an egress
// stalled by its CPU). A protocol without that window needs a confirmation
// from the ingress before every provider call: one more round trip on
// every exchange, which the tunnel exists to avoid.
func (c *Conn) awaitAcceptance(stream tunnelv1.Tunnel_ExchangeClient, cancel context.CancelCauseFunc, movable bool) (ok, late bool) {
	if c.acceptTimeout <= 0 || !movable {
		return c.accepted(stream), false
	}
	const waiting, decided, timedOut = 0, 1, 2
	var state atomic.Int32
	var expire func()
	expire = func() {
		if state.Load() != waiting {
			return
		}
		if c.elsewhere != nil && !c.elsewhere() {
			// Nowhere else to go: moving would only fail the request.
			time.AfterFunc(c.acceptTimeout, expire)
			return
		}
		if state.CompareAndSwap(waiting, timedOut) {
			cancel(errNotAccepted)
		}
	}
	timer := time.AfterFunc(c.acceptTimeout, expire)
	ok = c.accepted(stream)
	if state.CompareAndSwap(waiting, decided) {
		timer.Stop()
		return ok, false
	}
	return false, true // the headers may have come, after the cancellation
}

// recvStatus returns the status a stream ended with.
func recvStatus(stream tunnelv1.Tunnel_ExchangeClient) error {
	_, err := stream.Recv()
	if err == nil || errors.Is(err, io.EOF) {
		return status.Error(codes.Unavailable, "the egress ended the stream without taking it")
	}
	return err
}

// NotSentError is a round trip that failed before the egress accepted the
// exchange: nothing reached the provider, so it is safe to retry.
type NotSentError struct {
	Egress string
	Err    error
}

func (e *NotSentError) Error() string { return e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// Close closes the connection now, ending live streams.
func (c *Conn) Close() error {
	var err error
	c.close.Do(func() {
		err = c.cc.Close()
		c.closeBulk()
	})
	return err
}

// retire closes the connection once its last exchange ends, so an egress
// that leaves the mesh does not cut the streams it is serving.
func (c *Conn) retire() {
	c.retired.Store(true)
	if c.inflight.Load() == 0 {
		c.Close()
	}
}

func (c *Conn) done() {
	if c.inflight.Add(-1) == 0 && c.retired.Load() {
		c.Close()
	}
}

// bodyReadError marks a failure to read the client's request body, so the
// proxy reports the client's fault (e.g. 413) rather than the egress's.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// RoundTrip sends req over one stream and returns the egress's response as
// soon as its head arrives; the body streams as the egress sends it.
// req.URL must be llmesh://{provider}/{path}?{query}.
func (c *Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != Scheme {
		closeBody(req)
		return nil, fmt.Errorf("tunnel: %w: URL scheme %q, want %q", ErrProtocol, req.URL.Scheme, Scheme)
	}
	// A small body is read before the stream opens: it leaves with the
	// head, and a failure to read it is the client's, before any egress
	// was involved.
	whole, body, err := wholeBody(req)
	if err != nil {
		return nil, &bodyReadError{err}
	}
	c.inflight.Add(1)
	ctx, cancel := context.WithCancelCause(req.Context())
	fail := func(err error) (*http.Response, error) {
		cancel(err)
		c.done()
		return nil, err
	}
	bodyLength := requestBodyLength(req)
	stream, err := c.exchange(withTraceMetadata(ctx), bodyLength)
	if err != nil {
		closeBody(req)
		if ctx.Err() == nil && status.Code(err) == codes.Canceled {
			// The connection was closed (retired) under this request before
			// the stream opened: nothing reached the egress, so it may be
			// retried elsewhere.
			err = status.Error(codes.Unavailable, "connection to the egress is closed")
		}
		return fail(c.notSent(ctx, fromStatus(ctx, err)))
	}
	rh := &tunnelv1.RequestHead{
		Format:        Format,
		Provider:      req.URL.Host,
		Method:        req.Method,
		Path:          bytesOf(req.URL.EscapedPath()),
		RawQuery:      bytesOf(req.URL.RawQuery),
		Headers:       encodeHeader(req.Header),
		RequestId:     RequestID(req.Context()),
		InjectKey:     InjectKey(req.Context()),
		ContentLength: bodyLength,
		ResponseEnd:   true,
	}
	s := &bodySender{stream: stream, cancel: cancel}
	if whole {
		// No goroutine: the whole request is sent now, in its head when
		// the egress reads that, else as head, body and End frames.
		if s.sendWhole(rh, body, c.endInHead.Load()); ctx.Err() != nil {
			return fail(context.Cause(ctx))
		}
	} else {
		// Send reports the peer ending the stream as io.EOF (Recv says
		// why); anything else, a head that does not marshal, is this
		// request's own failure and says nothing about the egress.
		if err := stream.Send(requestFrame(rh)); err != nil && !errors.Is(err, io.EOF) {
			closeBody(req)
			return fail(localError("sending the request head", err))
		}
		// One goroutine sends the body while this one receives: never two senders.
		go s.run(req.Body)
	}

	// The egress sends stream headers the moment it accepts an exchange,
	// before it reads the request: a stream that ends without them was
	// refused (draining, over capacity, credentials) or never reached the
	// egress, and the provider was certainly not contacted. Unless the
	// body sender ended it: then ctx is cancelled and nothing is ejected.
	// A request without a body, or whose body the proxy keeps (GetBody),
	// can be sent again.
	movable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	ok, late := c.awaitAcceptance(stream, cancel, movable)
	if late {
		s.wait()
		if err := req.Context().Err(); err != nil {
			return fail(context.Cause(req.Context()))
		}
		c.eject(errNotAccepted)
		return fail(&NotSentError{Egress: c.Name, Err: errNotAccepted})
	}
	if !ok {
		s.wait()
		return fail(c.notSent(ctx, fromStatus(ctx, recvStatus(stream))))
	}

	f, err := stream.Recv()
	if err != nil {
		return fail(fromStatus(ctx, err))
	}
	head := f.GetResponse()
	if head == nil {
		return fail(fmt.Errorf("tunnel: %w: first frame from egress is not a response head (an egress of another llmesh version?)", ErrProtocol))
	}
	if head.Format != Format {
		return fail(fmt.Errorf("tunnel: %w: the egress answered in wire format %d, this ingress speaks %d", ErrProtocol, head.Format, Format))
	}
	c.ejected.Store(0)
	h := decodeHeader(head.Headers)
	resp := &http.Response{
		Status:        strconv.Itoa(int(head.Status)) + " " + http.StatusText(int(head.Status)),
		StatusCode:    int(head.Status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: contentLength(h),
		Request:       req,
	}
	if announced := h.Values("Trailer"); len(announced) > 0 {
		resp.Trailer = make(http.Header)
		for _, v := range announced {
			for k := range strings.SplitSeq(v, ",") {
				if k = strings.TrimSpace(k); k != "" {
					resp.Trailer[http.CanonicalHeaderKey(k)] = nil
				}
			}
		}
	}
	b := &responseBody{stream: stream, ctx: ctx, cancel: cancel, conn: c, resp: resp}
	if head.End {
		// The whole response came in its head: nothing more to receive.
		b.buf, b.ended = head.Body, true
		b.setTrailers(head.Trailers)
	}
	resp.Body = b
	return resp, nil
}

// withTraceMetadata puts ctx's trace context, if any, in the stream's
// outgoing metadata: the egress continues the ingress's trace.
func withTraceMetadata(ctx context.Context) context.Context {
	tc := TraceContextFrom(ctx)
	if tc.Parent == "" {
		return ctx
	}
	if tc.State == "" {
		return metadata.AppendToOutgoingContext(ctx, "traceparent", tc.Parent)
	}
	return metadata.AppendToOutgoingContext(ctx, "traceparent", tc.Parent, "tracestate", tc.State)
}

// exchange opens the stream of an exchange whose request body is
// bodyLength bytes long: a bulk body on the bulk connection when it is
// ready, anything else, or a bulk body the bulk connection failed to
// open a stream for, on the main one.
func (c *Conn) exchange(ctx context.Context, bodyLength int64) (tunnelv1.Tunnel_ExchangeClient, error) {
	if bulk(bodyLength) {
		if b := c.bulkClient(); b != nil {
			if stream, err := b.Exchange(ctx); err == nil || ctx.Err() != nil {
				return stream, err
			}
		}
	}
	return c.client.Exchange(ctx)
}

// wholeBody reads req's body when it is small enough to travel with its
// head (at most WholeBody, of known length). whole is false for a body that
// streams.
func wholeBody(req *http.Request) (whole bool, body []byte, err error) {
	if req.Body == nil || req.Body == http.NoBody {
		return true, nil, nil
	}
	n := req.ContentLength
	if n <= 0 || n > WholeBody {
		return false, nil, nil
	}
	defer req.Body.Close()
	body, err = ReadWhole(req.Body, n)
	return err == nil, body, err
}

// ReadWhole reads a body declared n bytes long, and one byte more to see
// it end: a reader that then reports the end (Go's server) knows the body
// is complete. A body shorter or longer than n is an error.
func ReadWhole(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n+1)
	m, err := io.ReadFull(r, buf)
	switch {
	case int64(m) == n && errors.Is(err, io.ErrUnexpectedEOF):
		return buf[:n:n], nil
	case err == nil:
		return nil, fmt.Errorf("request body longer than its Content-Length of %d", n)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return nil, fmt.Errorf("request body: %d bytes where Content-Length said %d: %w", m, n, io.ErrUnexpectedEOF)
	}
	return nil, fmt.Errorf("request body: %w", err)
}

// bodySender streams the request body in frames of at most FrameSize, then
// End. A failure of its own (reading the client's body, a local send error)
// cancels the exchange: it is this request's failure, not the egress's.
type bodySender struct {
	stream tunnelv1.Tunnel_ExchangeClient
	cancel context.CancelCauseFunc
	// mu is held across each Send: grpc-go ends the stream inside a Send
	// that fails locally, before the failure can be recorded, and wait lets
	// the receiver see the cancellation before it blames the egress.
	mu sync.Mutex
}

func (s *bodySender) run(body io.ReadCloser) {
	if body == nil || body == http.NoBody {
		s.send(finalFrame(nil))
		s.stream.CloseSend()
		return
	}
	defer body.Close()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		// grpc-go may read a message after Send returns: each frame gets
		// its own exact-size copy, never touched again.
		if n > 0 && !s.send(chunkFrame(bytes.Clone(buf[:n]))) {
			return // the stream ended; the receiving side reports why
		}
		switch {
		case err == io.EOF:
			s.send(finalFrame(nil))
			s.stream.CloseSend()
			return
		case err != nil:
			s.cancel(&bodyReadError{err})
			return
		}
	}
}

// sendWhole sends a request whose whole body is in hand, in its head when
// inHead (the egress reads that), else as head, body and End frames; then
// closes the sending side. A local failure cancels the exchange (see send).
func (s *bodySender) sendWhole(rh *tunnelv1.RequestHead, body []byte, inHead bool) {
	var ok bool
	if inHead {
		rh.Body, rh.End = body, true
		ok = s.send(requestFrame(rh))
	} else {
		ok = s.send(requestFrame(rh)) && (len(body) == 0 || s.send(chunkFrame(body))) && s.send(finalFrame(nil))
	}
	if ok {
		s.stream.CloseSend()
	}
}

// send sends f and reports whether the stream goes on.
func (s *bodySender) send(f *tunnelv1.Frame) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.stream.Send(f)
	if err != nil && !errors.Is(err, io.EOF) {
		// Not the peer ending the stream (that is io.EOF): a local failure.
		s.cancel(localError("sending the request body", err))
	}
	return err == nil
}

// wait returns once no Send is in progress.
func (s *bodySender) wait() {
	s.mu.Lock()
	//lint:ignore SA2001 the empty section is the point: it waits for the Send that holds the lock.
	s.mu.Unlock()
}

// responseBody reads body frames from the egress until End. Close may be
// called while a Read is blocked, to abort it.
type responseBody struct {
	stream tunnelv1.Tunnel_ExchangeClient
	ctx    context.Context
	cancel context.CancelCauseFunc
	conn   *Conn
	resp   *http.Response
	buf    []byte // only Read touches it
	ended  bool   // buf is the rest of the body: no frame follows
	once   sync.Once
	mu     sync.Mutex
	err    error // why the body ended; set once by finish
}

func (b *responseBody) Read(p []byte) (int, error) {
	for {
		// After Close, even data already received is not returned.
		if err := b.failure(); err != nil {
			return 0, err
		}
		if len(b.buf) > 0 {
			break
		}
		if b.ended {
			b.finish(io.EOF)
			continue
		}
		f, err := b.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: %w", ErrAborted, io.ErrUnexpectedEOF)
			} else {
				err = fromStatus(b.ctx, err)
			}
			b.finish(err)
			continue
		}
		switch k := f.Kind.(type) {
		case *tunnelv1.Frame_Body:
			b.buf = k.Body
		case *tunnelv1.Frame_End:
			b.setTrailers(k.End.GetTrailers())
			b.finish(io.EOF)
		default:
			b.finish(fmt.Errorf("tunnel: %w: unexpected frame in response body", ErrProtocol))
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// setTrailers fills the response's trailers from the egress's.
func (b *responseBody) setTrailers(hs []*tunnelv1.Header) {
	for k, vs := range decodeHeader(hs) {
		if b.resp.Trailer == nil {
			b.resp.Trailer = make(http.Header)
		}
		b.resp.Trailer[k] = vs
	}
}

func (b *responseBody) Close() error {
	b.finish(errBodyClosed)
	return nil
}

var errBodyClosed = errors.New("tunnel: response body closed")

// finish ends the stream exactly once: cancelling releases its resources
// whether or not the egress finished cleanly.
func (b *responseBody) finish(err error) {
	b.once.Do(func() {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
		b.cancel(err)
		b.conn.done()
	})
}

func (b *responseBody) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func contentLength(h http.Header) int64 {
	if v := h.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return -1
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
