package fakeprovider

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves a Provider on a real listener, with the lifecycle of an
// [net/http/httptest.Server].
type Server struct {
	*Provider
	URL string // http://127.0.0.1:port

	srv    *http.Server
	cancel context.CancelFunc
	served chan struct{}
	conns  sync.WaitGroup
	once   sync.Once
}

// Start serves a new Provider on addr (for example "127.0.0.1:0").
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Provider: New(),
		URL:      "http://" + ln.Addr().String(),
		cancel:   cancel,
		served:   make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler:           s.Provider,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// Counting connections rather than handlers lets Close wait without
		// racing a handler that is about to start: StateNew is reported by
		// Serve itself, StateClosed only after the connection's last handler.
		ConnState: func(_ net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				s.conns.Add(1)
			case http.StateHijacked, http.StateClosed:
				s.conns.Done()
			}
		},
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // returns ErrServerClosed once Close runs
	}()
	return s, nil
}

// Close closes the listener and every connection, cancels running
// handlers' contexts and waits for the handlers to return.
func (s *Server) Close() {
	s.once.Do(func() {
		// Connections first, so no handler that returns early gets its
		// answer out.
		_ = s.srv.Close()
		s.cancel()
		<-s.served
		s.conns.Wait()
	})
}
