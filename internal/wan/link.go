package wan

import (
	"errors"
	"maps"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes the link; both directions get the same.
type Config struct {
	// Delay is the one-way propagation delay (75 ms each way: 150 ms RTT).
	Delay time.Duration
	// Rate is the bottleneck's rate in bits per second; 0: unlimited.
	Rate int64
	// Queue is how many bytes wait at the bottleneck before it drops
	// arrivals (tail drop). 0: one bandwidth-delay product (Rate × RTT).
	Queue int
	// Loss is the probability that a packet is lost on the wire (0.001: 0.1 %).
	Loss float64
	// Seed seeds the loss; the same seed loses the same packets of the same
	// sequence.
	Seed uint64
}

// Ocean is the link of the "Across oceans" table: HK to US West,
// 150 ms RTT, 100 Mbit/s, 0.1 % loss.
var Ocean = Config{Delay: 75 * time.Millisecond, Rate: 100_000_000, Loss: 0.001, Seed: 1}

// RTT is the round-trip time the link adds.
func (c Config) RTT() time.Duration { return 2 * c.Delay }

func (c Config) queue() int {
	if c.Queue > 0 || c.Rate == 0 {
		return c.Queue
	}
	return int(c.Rate / 8 * int64(c.RTT()) / int64(time.Second))
}

// verdict is what became of one packet.
type verdict int

const (
	delivered   verdict = iota
	lost                // on the wire, at random
	tailDropped         // at the bottleneck, its queue full
)

// shaper decides each packet's fate on one direction of the link. It is
// the whole model, a pure function of arrival times and sizes: a FIFO
// bottleneck that sends Rate bits per second and holds Queue bytes, then
// Delay on the wire, where Loss of the packets vanish.
type shaper struct {
	cfg   Config
	queue int
	rnd   *rand.Rand
	// free is when the bottleneck has sent everything queued so far.
	free time.Time
}

func newShaper(cfg Config, stream uint64) *shaper {
	return &shaper{cfg: cfg, queue: cfg.queue(), rnd: rand.New(rand.NewPCG(cfg.Seed, stream))}
}

// admit takes a packet of size bytes arriving at now and returns when it
// reaches the far end, or why it does not. Arrivals must come in time order.
func (s *shaper) admit(now time.Time, size int) (time.Time, verdict) {
	start := now
	if s.cfg.Rate > 0 {
		if s.free.After(now) {
			backlog := int64(s.free.Sub(now)) * s.cfg.Rate / 8 / int64(time.Second)
			if backlog+int64(size) > int64(s.queue) {
				return time.Time{}, tailDropped
			}
			start = s.free
		}
		s.free = start.Add(time.Duration(int64(size) * 8 * int64(time.Second) / s.cfg.Rate))
		start = s.free
	}
	// Lost on the wire: it took its turn at the bottleneck all the same.
	if s.cfg.Loss > 0 && s.rnd.Float64() < s.cfg.Loss {
		return time.Time{}, lost
	}
	return start.Add(s.cfg.Delay), delivered
}

// Device is one end of the link: a TUN device, or a fake in tests. Read
// returns one whole IP packet; Close makes a blocked Read return.
type Device interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// Stats counts packets per direction, A to B and B to A.
type Stats struct {
	AB, BA DirStats
}

// DirStats counts one direction's packets.
type DirStats struct {
	Delivered, Lost, TailDropped, Cut int64
}

type dirCounters struct {
	delivered, lost, tailDropped, cut atomic.Int64
}

func (c *dirCounters) stats() DirStats {
	return DirStats{c.delivered.Load(), c.lost.Load(), c.tailDropped.Load(), c.cut.Load()}
}

// Link forwards packets between two devices as Config says.
type Link struct {
	cfg    Config
	a, b   Device
	ab, ba dirCounters
	// cut holds the addresses whose packets vanish (copy on write).
	cut   atomic.Pointer[map[netip.Addr]bool]
	cutMu sync.Mutex
	wg    sync.WaitGroup
	once  sync.Once
}

// NewLink starts forwarding between a and b until Close.
func NewLink(cfg Config, a, b Device) *Link {
	l := &Link{cfg: cfg, a: a, b: b}
	l.wg.Add(2)
	go l.forward(a, b, newShaper(cfg, 1), &l.ab)
	go l.forward(b, a, newShaper(cfg, 2), &l.ba)
	return l
}

// Cut makes every packet from or to addr vanish, in both directions, as if
// that host had fallen off the network without closing anything.
func (l *Link) Cut(addr netip.Addr) { l.setCut(addr, true) }

// Restore undoes Cut.
func (l *Link) Restore(addr netip.Addr) { l.setCut(addr, false) }

func (l *Link) setCut(addr netip.Addr, on bool) {
	l.cutMu.Lock()
	defer l.cutMu.Unlock()
	next := map[netip.Addr]bool{}
	if cur := l.cut.Load(); cur != nil {
		maps.Copy(next, *cur)
	}
	if on {
		next[addr] = true
	} else {
		delete(next, addr)
	}
	l.cut.Store(&next)
}

// Stats returns the packet counts so far.
func (l *Link) Stats() Stats { return Stats{AB: l.ab.stats(), BA: l.ba.stats()} }

// Close closes both devices and waits for the forwarders to end.
func (l *Link) Close() error {
	var err error
	l.once.Do(func() {
		err = errors.Join(l.a.Close(), l.b.Close())
		l.wg.Wait()
	})
	return err
}

// packet is one IP packet on its way, due at the far end at at.
type packet struct {
	buf *[]byte
	n   int
	at  time.Time
}

// maxPacket bounds a TUN read: the MTU is 1500, but a read must never
// truncate, so the buffer holds any IP packet.
const maxPacket = 65535

var bufPool = sync.Pool{New: func() any { b := make([]byte, maxPacket); return &b }}

// inFlight bounds the packets on the wire of one direction: 100 Mbit/s for
// 75 ms is ~650 full packets; the rest of the room is for small ones.
const inFlight = 1 << 16

// forward reads packets from src, shapes them, and hands them to a writer
// that delivers each to dst when it is due. Delivery times only grow (one
// FIFO bottleneck, one delay), so a channel keeps them in order.
func (l *Link) forward(src, dst Device, s *shaper, c *dirCounters) {
	defer l.wg.Done()
	wire := make(chan packet, inFlight)
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		deliver(dst, wire, c)
	}()
	defer writer.Wait()
	defer close(wire)
	for {
		bp := bufPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if err != nil {
			bufPool.Put(bp)
			return // closed
		}
		if l.isCut((*bp)[:n]) {
			c.cut.Add(1)
			bufPool.Put(bp)
			continue
		}
		at, v := s.admit(time.Now(), n)
		switch v {
		case lost:
			c.lost.Add(1)
		case tailDropped:
			c.tailDropped.Add(1)
		}
		if v != delivered {
			bufPool.Put(bp)
			continue
		}
		select {
		case wire <- packet{bp, n, at}:
		default: // more packets on the wire than inFlight: a drop too
			c.tailDropped.Add(1)
			bufPool.Put(bp)
		}
	}
}

func deliver(dst Device, wire <-chan packet, c *dirCounters) {
	for p := range wire {
		if d := time.Until(p.at); d > 0 {
			time.Sleep(d)
		}
		// A write fails when the device is gone or the far stack refuses
		// the packet: either way the packet is lost, as on a real wire.
		if _, err := dst.Write((*p.buf)[:p.n]); err == nil {
			c.delivered.Add(1)
		}
		bufPool.Put(p.buf)
	}
}

// isCut reports whether an IPv4 packet comes from or goes to a cut address.
func (l *Link) isCut(pkt []byte) bool {
	cut := l.cut.Load()
	if cut == nil || len(*cut) == 0 || len(pkt) < 20 || pkt[0]>>4 != 4 {
		return false
	}
	return (*cut)[netip.AddrFrom4([4]byte(pkt[12:16]))] || (*cut)[netip.AddrFrom4([4]byte(pkt[16:20]))]
}
