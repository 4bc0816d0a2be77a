package proxy

import (
	"errors"
	"io"
	"net/http"
	"sync"
)

// keepChunk is the first buffer for a body of unknown length; it doubles as
// the body arrives.
const keepChunk = 32 << 10

var (
	// errReplaced ends a try's body once another try reads it.
	errReplaced = errors.New("the request body is being sent again")
	// errNotKept: the body grew past what may be kept; it cannot be sent again.
	errNotKept = errors.New("the request body was not kept")
)

// replayBody streams a client's body to the first try while keeping a copy
// of what it read, so that a later try reads the same bytes: the copy, then
// what the client has not sent yet. Nothing waits for the whole body before
// the first byte goes out. The copy holds at most limit bytes, reserved in
// the node's budget as it grows; past either, it is dropped and the request
// can no longer be sent again.
//
// Each try reads through its own view; a new view ends the previous one,
// whose try has failed, so no two tries read the client's body at once.
type replayBody struct {
	src    io.ReadCloser
	limit  int64
	budget *replayBudget

	readMu sync.Mutex // held across each read of src

	mu       sync.Mutex // guards what follows
	kept     []byte     // bytes 0..read of src, unless lost
	read     int        // bytes read from src
	eof      bool
	lost     bool  // the copy was dropped
	reserved int64 // bytes of the budget kept holds
	current  int   // the view that may read
}

// keepWhileStreaming makes r's body replayable while it streams, if it may
// be: declared no larger than limit, and within the budget. It returns nil
// when the body streams unkept.
func keepWhileStreaming(r *http.Request, limit int64, budget *replayBudget) *replayBody {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength > limit {
		return nil
	}
	b := &replayBody{src: r.Body, limit: limit, budget: budget}
	if r.ContentLength > 0 {
		// The declared length up front: one reservation, one allocation.
		if !budget.reserve(r.ContentLength) {
			return nil
		}
		b.reserved = r.ContentLength
		b.kept = make([]byte, 0, r.ContentLength)
	}
	r.Body = &replayView{b: b}
	r.GetBody = b.view
	return b
}

// view returns a reader of the whole body for another try, ending the
// previous try's view.
func (b *replayBody) view() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost {
		return nil, errNotKept
	}
	b.current++
	return &replayView{b: b, id: b.current}, nil
}

// close releases the copy and closes the client's body, when the request ends.
func (b *replayBody) close() {
	b.mu.Lock()
	b.drop()
	b.mu.Unlock()
	b.src.Close()
}

// keep appends p, read from src, to the copy, or drops the copy when p
// takes it past the limit or the budget. b.mu is held.
func (b *replayBody) keep(p []byte) {
	if b.lost {
		return
	}
	need := len(b.kept) + len(p)
	if int64(need) > b.limit {
		b.drop()
		return
	}
	if need > cap(b.kept) {
		size := min(max(2*cap(b.kept), keepChunk, need), int(b.limit))
		if !b.budget.reserve(int64(size - cap(b.kept))) {
			b.drop()
			return
		}
		b.reserved += int64(size - cap(b.kept))
		b.kept = append(make([]byte, 0, size), b.kept...)
	}
	b.kept = append(b.kept, p...)
}

// drop gives up the copy. b.mu is held.
func (b *replayBody) drop() {
	b.lost = true
	b.kept = nil
	b.budget.release(b.reserved)
	b.reserved = 0
}

// replayView is one try's reader of a replayBody.
type replayView struct {
	b   *replayBody
	id  int
	pos int // bytes this view returned
}

func (v *replayView) Read(p []byte) (int, error) {
	b := v.b
	for {
		b.mu.Lock()
		switch {
		case v.id != b.current:
			b.mu.Unlock()
			return 0, errReplaced
		case v.pos < b.read:
			// A later try, behind the first: from the copy (view refuses a
			// view once the copy is lost).
			n := copy(p, b.kept[v.pos:b.read])
			v.pos += n
			b.mu.Unlock()
			return n, nil
		case b.eof:
			b.mu.Unlock()
			return 0, io.EOF
		}
		b.mu.Unlock()

		b.readMu.Lock()
		b.mu.Lock()
		if v.id != b.current || v.pos < b.read {
			// Another view read meanwhile: look again.
			b.mu.Unlock()
			b.readMu.Unlock()
			continue
		}
		b.mu.Unlock()
		n, err := b.src.Read(p)
		b.mu.Lock()
		b.keep(p[:n])
		b.read += n
		v.pos += n
		if err == io.EOF {
			b.eof = true
		}
		b.mu.Unlock()
		b.readMu.Unlock()
		return n, err
	}
}

// Close ends nothing: a try's transport closes its body when it stops
// sending, and a later try still reads the rest. replayBody.close closes the
// client's body when the request ends.
func (v *replayView) Close() error { return nil }
