package tunnel

import (
	"errors"
	"io"
	"net"

	"google.golang.org/grpc/credentials"
)

// handshakeCreds wraps the egress's transport credentials so that at most
// cap(slots) connections are in their handshake at once: past the cap a new
// connection is closed at once rather than held, so silent connections
// cannot pile up (grpc.ConnectionTimeout bounds how long each may take).
// With TLS the handshake is what authenticates an ingress (its client
// certificate); in plaintext it is the wait for the HTTP/2 preface.
type handshakeCreds struct {
	credentials.TransportCredentials
	plaintext bool
	slots     chan struct{}
	refused   func()
}

var errTooManyHandshakes = errors.New("tunnel: too many connections in their handshake")

func (c *handshakeCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	select {
	case c.slots <- struct{}{}:
	default:
		c.refused()
		return nil, nil, errTooManyHandshakes // grpc-go closes conn
	}
	defer func() { <-c.slots }()
	if c.plaintext {
		var err error
		if conn, err = readPreface(conn); err != nil {
			return nil, nil, err
		}
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c *handshakeCreds) Clone() credentials.TransportCredentials {
	clone := *c
	clone.TransportCredentials = c.TransportCredentials.Clone()
	return &clone
}

// clientPreface opens every HTTP/2 connection (RFC 9113, section 3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// readPreface waits for the client's HTTP/2 preface, so that a silent
// plaintext connection holds a handshake slot as a silent TLS one does, and
// returns a conn that hands it on to grpc-go, which checks it.
func readPreface(conn net.Conn) (net.Conn, error) {
	buf := make([]byte, len(clientPreface))
	if _, err := io.ReadFull(conn, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // closed during the handshake: grpc-go logs no error
		}
		return nil, err
	}
	return &prefacedConn{Conn: conn, preface: buf}, nil
}

// prefacedConn replays the preface read by readPreface before reading on.
type prefacedConn struct {
	net.Conn
	preface []byte
}

func (c *prefacedConn) Read(p []byte) (int, error) {
	if len(c.preface) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.preface)
	c.preface = c.preface[n:]
	return n, nil
}
