package tunnel

import (
	"net/http"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/llmesh/llmesh/proto/llmesh/tunnel/v1/tunnelv1"
)

// bulkBodyBytes is the request body size above which an exchange goes on
// its egress's bulk connection; bodies of unknown length go there too (a
// chunked upload). Every stream of one TCP connection waits for each lost
// packet of any of them to be sent again, an RTT later across an ocean:
// on their own connection, the megabytes of an upload no longer stall the
// small exchanges, which is most of what the tunnel carries.
const bulkBodyBytes = 256 << 10

// bulk reports whether a request body of length n (-1: unknown) is bulk.
func bulk(n int64) bool { return n < 0 || n > bulkBodyBytes }

// bulkConn is an egress's second connection, for bulk request bodies. It
// is opened by the first bulk body, with the main connection's settings
// and credentials; until it is ready, and whenever it is down, bulk bodies
// go on the main connection, so it never fails an exchange nor makes its
// egress look down.
type bulkConn struct {
	mu     sync.Mutex
	closed bool
	cc     *grpc.ClientConn
	client tunnelv1.TunnelClient
}

// bulkClient returns the bulk connection's client when it is ready, and
// nil otherwise: then it dials it, or wakes it, for the next bulk body.
func (c *Conn) bulkClient() tunnelv1.TunnelClient {
	b := &c.bulk
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || c.newCC == nil {
		return nil
	}
	if b.cc == nil {
		cc, err := c.newCC()
		if err != nil {
			return nil // the main connection was built with the same target and options
		}
		cc.Connect()
		b.cc, b.client = cc, tunnelv1.NewTunnelClient(cc)
		return nil
	}
	if b.cc.GetState() == connectivity.Ready {
		return b.client
	}
	wakeIdle(b.cc)
	return nil
}

// resetBulkBackoff makes a bulk connection waiting to reconnect try now.
func (c *Conn) resetBulkBackoff() {
	b := &c.bulk
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cc != nil && b.cc.GetState() == connectivity.TransientFailure {
		b.cc.ResetConnectBackoff()
	}
}

// closeBulk closes the bulk connection, and keeps a later bulk body from
// opening one.
func (c *Conn) closeBulk() {
	b := &c.bulk
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.cc != nil {
		b.cc.Close()
	}
}

// requestBodyLength is req's body length as the request head carries it:
// -1 when unknown (net/http says 0 for an unknown length with a body).
func requestBodyLength(req *http.Request) int64 {
	if req.ContentLength == 0 && req.Body != nil && req.Body != http.NoBody {
		return -1
	}
	return req.ContentLength
}
