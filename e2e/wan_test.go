package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/internal/wan"
)

// TestAcrossOceans is make bench-wan (LLMESH_WAN=1, root): the real
// binaries on both sides of an emulated 150 ms RTT, 100 Mbit/s, 0.1 % loss
// link (internal/wan), each row of the "Across oceans" table of docs/benchmarks.md
// measured against its floor, the same request sent straight over the link.
//
//	host A (10.201.0.1): the client (this process) and the ingress
//	host B (10.201.0.2, .3): egress wan-e1 (and wan-e2) and the fake provider
//
// The provider runs in this process, listening in B, so it can stamp the
// moment a body's last byte arrived on the clock the client reads. WAN_RTT,
// WAN_RATE (Mbit/s) and WAN_LOSS (a fraction) change the link.
func TestAcrossOceans(t *testing.T) {
	if os.Getenv("LLMESH_WAN") == "" {
		t.Skip("the across-oceans benchmark: run with make bench-wan (LLMESH_WAN=1, root)")
	}
	if err := wan.Check(); err != nil {
		t.Skip(err)
	}
	o := startOcean(t, oceanLink(t))
	start := time.Now()
	var rows []wanRow
	// In this order: the cut needs the second egress that connecting starts.
	for _, g := range []struct {
		name string
		run  func() []wanRow
	}{
		{"warm", func() []wanRow { return []wanRow{o.warmSmall()} }},
		{"paced", func() []wanRow { return []wanRow{o.pacedBody()} }},
		{"beside", func() []wanRow { return []wanRow{o.smallBesideUpload()} }},
		{"fresh", o.freshTunnel},
		{"back", func() []wanRow { return []wanRow{o.egressBack()} }},
		{"connecting", func() []wanRow { return []wanRow{o.connecting()} }},
		{"cut", func() []wanRow { return []wanRow{o.silentCut()} }},
		{"idle", func() []wanRow { return []wanRow{o.afterIdle()} }},
	} {
		if wanRowsWanted(g.name) {
			rows = append(rows, g.run()...)
		}
	}
	slices.SortStableFunc(rows, func(a, b wanRow) int { return a.order - b.order })
	fmt.Print(wanTable(o.link, o.check, rows, time.Since(start)))
}

// wanRowsWanted: WAN_ROWS=fresh,cut runs only those groups of rows.
func wanRowsWanted(name string) bool {
	v := os.Getenv("WAN_ROWS")
	return v == "" || slices.Contains(strings.Split(v, ","), name)
}

// oceanLink is wan.Ocean with the WAN_* overrides.
func oceanLink(t *testing.T) wan.Config {
	cfg := wan.Ocean
	if v := os.Getenv("WAN_RTT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("WAN_RTT=%q: want a positive duration", v)
		}
		cfg.Delay = d / 2
	}
	if v := os.Getenv("WAN_RATE"); v != "" {
		mbit, err := strconv.ParseFloat(v, 64)
		if err != nil || mbit < 0 {
			t.Fatalf("WAN_RATE=%q: want Mbit/s (0: unlimited)", v)
		}
		cfg.Rate = int64(mbit * 1e6)
	}
	if v := os.Getenv("WAN_LOSS"); v != "" {
		loss, err := strconv.ParseFloat(v, 64)
		if err != nil || loss < 0 || loss >= 1 {
			t.Fatalf("WAN_LOSS=%q: want a fraction in [0, 1)", v)
		}
		cfg.Loss = loss
	}
	return cfg
}

// ocean is the bench's world: the two hosts, the provider, the nodes and
// the clients in host A.
type ocean struct {
	t        *testing.T
	link     wan.Config
	hosts    *wan.Hosts
	stamps   *bodyStamps
	provider string // the provider's port in B
	certs    string // the mesh CA and node certificates
	ingress  *process
	ingressN int
	egress   map[string]*process
	all      []*process // every node process started, for WAN_LOGS
	// floor talks to the provider straight over the link; local to the
	// ingress, inside host A. Both keep connections alive.
	floor, local *http.Client
	check        string // what the link measured before the rows
}

const (
	oceanIngressHTTP = "127.0.0.1:8080"
	oceanE2Addr      = "10.201.0.3"
	smallChat        = `{"model":"fake-gpt","messages":[{"role":"user","content":"hello"}]}`
)

func startOcean(t *testing.T, link wan.Config) *ocean {
	h, err := wan.Start(link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	if v := os.Getenv("WAN_INITCWND"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("WAN_INITCWND=%q: want a number of segments", v)
		}
		if err := h.SetInitCwnd(n); err != nil {
			t.Fatal(err)
		}
	}
	o := &ocean{t: t, link: link, hosts: h, stamps: &bodyStamps{at: map[string]time.Time{}}, egress: map[string]*process{}}
	o.floor = o.client()
	o.local = o.client()
	if dir := os.Getenv("WAN_LOGS"); dir != "" {
		t.Cleanup(func() { o.saveLogs(dir) })
	}

	// The provider, in host B on every address: the egress nodes reach it on
	// B's loopback, the floor across the link.
	ln, err := h.B.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: o.stamps.wrap(fakeprovider.New()), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	o.provider = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	o.check = o.checkLink()
	o.makeCerts()
	o.startEgress("wan-e1", h.B.Addr.String())
	o.startIngress()
	o.waitThrough("wan-e1")
	return o
}

// saveLogs writes each node process's log to dir (WAN_LOGS=dir).
func (o *ocean) saveLogs(dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		o.t.Error(err)
		return
	}
	for i, p := range o.all {
		name := fmt.Sprintf("%02d-%s.log", i, filepath.Base(p.cmd.Args[len(p.cmd.Args)-1]))
		if m := regexp.MustCompile(`name=(\S+)`).FindStringSubmatch(p.output()); m != nil {
			name = fmt.Sprintf("%02d-%s.log", i, m[1])
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(p.output()+"\n"), 0o644); err != nil {
			o.t.Error(err)
		}
	}
}

// client returns an HTTP client that dials from host A.
func (o *ocean) client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         o.hosts.A.Dial,
		MaxIdleConnsPerHost: 256,
		DisableCompression:  true,
	}}
}

// checkLink measures the link as the rows will see it: a fresh
// connection's handshake and a warm small request, straight to the provider.
func (o *ocean) checkLink() string {
	c := o.client()
	defer c.CloseIdleConnections()
	first := o.must(o.small(c, o.floorURL("/v1/chat/completions")))
	var warm []time.Duration
	for range 5 {
		warm = append(warm, o.must(o.small(c, o.floorURL("/v1/chat/completions"))).took)
	}
	return fmt.Sprintf("first request on a new connection %s, warm requests %s (median of 5)",
		ms(first.took), ms(medianOf(warm)))
}

func (o *ocean) floorURL(path string) string {
	return "http://" + o.hosts.B.Addr.String() + ":" + o.provider + path
}

func (o *ocean) meshURL(path string) string {
	return "http://" + oceanIngressHTTP + "/openai" + path
}

// makeCerts creates the mesh CA: the tunnel runs mutual TLS, as across any
// real ocean.
func (o *ocean) makeCerts() {
	o.certs = o.t.TempDir()
	o.cli("certs", "init", "-dir", o.certs)
}

func (o *ocean) cli(args ...string) {
	dir, err := binaries()
	if err != nil {
		o.t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(dir, "ingress"), args...).CombinedOutput(); err != nil {
		o.t.Fatalf("ingress %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (o *ocean) tlsFor(name, role string, hint ...string) string {
	args := []string{"certs", "issue", "-dir", o.certs, "-name", name, "-role", role, "-force"}
	if len(hint) > 0 {
		args = append(args, "-hint", hint[0])
	}
	o.cli(args...)
	return fmt.Sprintf(`{cert: "%[1]s/%[2]s.pem", key: "%[1]s/%[2]s-key.pem", ca: "%[1]s/ca.pem"}`, o.certs, name)
}

// startEgress starts (or restarts) a wnam egress in host B at addr.
func (o *ocean) startEgress(name, addr string) *process {
	cfg := writeConfig(o.t, fmt.Sprintf(`
node: {name: %s, loc: US, hint: wnam}
http: {listen: "127.0.0.1:0"}
tunnel: {listen: "%s:9443", tls: %s}
gossip: {bind: "%s:7947", profile: wan, join: ["%s:7946"]}
providers:
  openai: {base_url: "http://127.0.0.1:%s"}
`, name, addr, o.tlsFor(name, "egress", "wnam"), addr, o.hosts.A.Addr, o.provider))
	p := startProcessIn(o.t, o.hosts.B.NS, "egress", nil, "-config", cfg)
	p.field(o.t, `(node started)`)
	o.egress[name] = p
	o.all = append(o.all, p)
	return p
}

// startIngress kills the running ingress, if any, and starts a new one
// under a new name: its tunnel connections are new.
func (o *ocean) startIngress() *process {
	if o.ingress != nil {
		// SIGKILL: with the wan profile, a graceful leave takes ~6 s.
		o.ingress.cmd.Process.Kill()
		<-o.ingress.done
	}
	o.local.CloseIdleConnections()
	o.ingressN++
	name := fmt.Sprintf("wan-hk-%d", o.ingressN)
	cfg := writeConfig(o.t, fmt.Sprintf(`
node: {name: %s, loc: HK}
http: {listen: "%s"}
tunnel: {tls: %s}
gossip: {bind: "%s:7946", profile: wan, join: ["%s:7947"]}
routing: {rules: [{locs: [HK], hint: wnam}], fallback: fail}
providers:
  openai: {base_url: "http://127.0.0.1:9"}
`, name, oceanIngressHTTP, o.tlsFor(name, "ingress"), o.hosts.A.Addr, o.hosts.B.Addr))
	o.ingress = startProcessIn(o.t, o.hosts.A.NS, "ingress", nil, "-config", cfg)
	o.ingress.field(o.t, `(node started)`)
	o.all = append(o.all, o.ingress)
	return o.ingress
}

// waitThrough waits until a request through the ingress is served by egress.
func (o *ocean) waitThrough(egress string) {
	o.t.Helper()
	wait.For(o.t, 30*time.Second, func() error {
		r := o.small(o.local, o.meshURL("/v1/chat/completions"))
		if r.err != nil || r.status != 200 || r.egress != egress {
			return fmt.Errorf("through the ingress: status %d egress %q err %v", r.status, r.egress, r.err)
		}
		return nil
	})
}

// waitLog waits for a line of p's log from line from on that matches re,
// checking every millisecond (a row starts its requests the moment the
// line appears), and returns the number of lines seen.
func (o *ocean) waitLog(p *process, from int, re string) int {
	o.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		lines := p.lines[min(from, len(p.lines)):]
		n := len(p.lines)
		p.mu.Unlock()
		for i, l := range lines {
			if rx.MatchString(l) {
				return from + i + 1
			}
		}
		from = n
		time.Sleep(time.Millisecond)
	}
	o.t.Fatalf("no log line matches %q within 30 s:\n%s", re, p.output())
	return 0
}

func logLines(p *process) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// exchange is one timed request: from the first byte sent to the last
// byte of the response read.
type exchange struct {
	took   time.Duration
	status int
	egress string
	err    error
	sent   time.Time
}

func (o *ocean) small(c *http.Client, url string) exchange {
	return o.send(c, url, strings.NewReader(smallChat), int64(len(smallChat)), nil)
}

func (o *ocean) send(c *http.Client, url string, body io.Reader, n int64, header http.Header) exchange {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", url, body)
	if err != nil {
		return exchange{err: err}
	}
	req.ContentLength = n
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	x := exchange{sent: time.Now()}
	resp, err := c.Do(req)
	if err != nil {
		x.err, x.took = err, time.Since(x.sent)
		return x
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	x.took, x.status, x.egress, x.err = time.Since(x.sent), resp.StatusCode, resp.Header.Get("X-Mesh-Egress"), err
	return x
}

// must fails the bench on a request that did not end in a 200.
func (o *ocean) must(x exchange) exchange {
	o.t.Helper()
	if x.err != nil || x.status != 200 {
		o.t.Fatalf("request: status %d, err %v", x.status, x.err)
	}
	return x
}

// The rows. Each returns the floor and llmesh's figure for one line of the
// table; order is the line's place in it.

type wanRow struct {
	order  int
	name   string
	floor  time.Duration
	llmesh time.Duration
	// absolute: the goal bounds llmesh's figure itself, not the difference.
	absolute time.Duration
	goal     string
	note     string
	skipped  string // why the row was not measured; "" if it was
	// reference: a row with no goal, for reading the others.
	reference bool
}

func (r wanRow) added() time.Duration { return r.llmesh - r.floor }

// met reports whether the row meets its goal: within absolute, or at most
// a quarter of an RTT over the floor (less is not a round trip).
func (r wanRow) met(rtt time.Duration) bool {
	if r.absolute > 0 {
		return r.llmesh <= r.absolute
	}
	return r.added() <= rtt/4
}

// warmSmall: small requests on warm connections, the reference row.
func (o *ocean) warmSmall() wanRow {
	var floor, mesh []time.Duration
	for range 15 {
		floor = append(floor, o.must(o.small(o.floor, o.floorURL("/v1/chat/completions"))).took)
		mesh = append(mesh, o.must(o.small(o.local, o.meshURL("/v1/chat/completions"))).took)
	}
	return wanRow{order: 0, name: "warm small request (reference)", floor: medianOf(floor), llmesh: medianOf(mesh),
		goal: "no extra round trip", note: "median of 15"}
}

// pacedBody: a 1 MiB body sent at 5 MB/s; the time from the request's
// start to its last byte reaching the provider.
func (o *ocean) pacedBody() wanRow {
	const n, rate = 1 << 20, 5_000_000
	lastByte := func(c *http.Client, url string, i int) time.Duration {
		id := fmt.Sprintf("paced-%d-%d", i, time.Now().UnixNano())
		x := o.must(o.send(c, url, &pacedReader{n: n, rate: rate}, n, http.Header{bodyStampHeader: {id}}))
		return o.stamps.get(o.t, id).Sub(x.sent)
	}
	// Both connections first carry 4 MiB, so that neither TCP's
	// congestion state nor the tunnel's flow-control window is cold: what
	// remains is how the body is forwarded.
	for _, u := range []struct {
		c   *http.Client
		url string
	}{{o.floor, o.floorURL("/v1/echo/upload")}, {o.local, o.meshURL("/v1/echo/upload")}} {
		o.must(o.send(u.c, u.url, io.LimitReader(zeroReader{}, 4<<20), 4<<20, nil))
	}
	var floor, mesh []time.Duration
	for i := range 7 {
		floor = append(floor, lastByte(o.floor, o.floorURL("/v1/echo/upload"), i))
		mesh = append(mesh, lastByte(o.local, o.meshURL("/v1/echo/upload"), i))
	}
	return wanRow{order: 4, name: "a 1 MiB body from a client sending at 5 MB/s (to its last byte at the provider)",
		floor: slices.Min(floor), llmesh: slices.Min(mesh), goal: "≤ +15 ms", absolute: 0,
		note: fmt.Sprintf("best of 7 (a loss in the last RTT of a body delays its end; medians %s and %s); both paths warmed by 4 MiB first",
			ms(medianOf(floor)), ms(medianOf(mesh)))}
}

// smallBesideUpload: small requests sent one after another while a 20 MiB
// upload crosses: through the ingress, the upload shares the tunnel's one
// connection with them; on the floor, it has its own, warmed by a 4 MiB
// upload first, as the tunnel is by the rows before.
func (o *ocean) smallBesideUpload() wanRow {
	floorBulk := o.client() // the floor upload's own kept-alive connection
	defer floorBulk.CloseIdleConnections()
	o.must(o.send(floorBulk, o.floorURL("/v1/echo/upload"), io.LimitReader(zeroReader{}, 4<<20), 4<<20, nil))
	beside := func(c, bulk *http.Client, url, uploadURL string) ([]time.Duration, time.Duration) {
		const n = 20 << 20
		done := make(chan exchange, 1)
		go func() { done <- o.send(bulk, uploadURL, io.LimitReader(zeroReader{}, n), n, nil) }()
		time.Sleep(500 * time.Millisecond) // the upload's ramp: then its bytes queue
		var lat []time.Duration
		for {
			x := o.must(o.small(c, url))
			select {
			case up := <-done:
				if up.err != nil || up.status != 200 {
					o.t.Fatalf("20 MiB upload: status %d err %v", up.status, up.err)
				}
				if len(lat) == 0 {
					lat = append(lat, x.took)
				}
				return lat, up.took
			default:
				lat = append(lat, x.took)
			}
		}
	}
	meshBulk := o.client() // the upload's own connection to the ingress, in host A
	defer meshBulk.CloseIdleConnections()
	// Warmed as the floor's: the first bulk body of a tunnel connection
	// rides the main connection while it opens the bulk one.
	o.must(o.send(meshBulk, o.meshURL("/v1/echo/upload"), io.LimitReader(zeroReader{}, 4<<20), 4<<20, nil))
	var floor, mesh, floorUp, meshUp []time.Duration
	for range 2 {
		f, fu := beside(o.floor, floorBulk, o.floorURL("/v1/chat/completions"), o.floorURL("/v1/echo/upload"))
		m, mu := beside(o.local, meshBulk, o.meshURL("/v1/chat/completions"), o.meshURL("/v1/echo/upload"))
		floor, floorUp = append(floor, f...), append(floorUp, fu)
		mesh, meshUp = append(mesh, m...), append(meshUp, mu)
	}
	return wanRow{order: 2, name: "small requests while a 20 MiB upload crosses the same tunnel", floor: medianOf(floor), llmesh: medianOf(mesh),
		goal: "≤ +0.25 RTT", note: fmt.Sprintf("median of %d and %d requests over 2 uploads, which took %s straight and %s through the tunnel",
			len(floor), len(mesh), secList(floorUp), secList(meshUp))}
}

// freshTunnel restarts the ingress for each sample, so its tunnel
// connection is new, and measures three rows on it:
//   - the first request, sent the moment the ingress starts connecting:
//     what a request pays when it finds the tunnel not connected;
//   - then, on five of the new connections, 1 MiB uploaded at once;
//   - on three others, 100 concurrent small requests.
//
// Their floors use a new connection straight to the provider the same way.
func (o *ocean) freshTunnel() []wanRow {
	var first, upload, burst []time.Duration
	for i := range 8 {
		p := o.startIngress()
		o.waitLog(p, 0, `tunnel: connecting to egress`)
		x := o.must(o.small(o.local, o.meshURL("/v1/chat/completions")))
		first = append(first, x.took)
		if i < 5 {
			upload = append(upload, o.upload(o.local, o.meshURL("/v1/echo/upload")))
		} else {
			o.warmLocal(100)
			burst = append(burst, medianOf(o.concurrent(o.local, o.meshURL("/v1/chat/completions"), 100)))
		}
	}
	var floorUpload, floorBurst []time.Duration
	for range 5 {
		c := o.client()
		o.must(o.small(c, o.floorURL("/v1/chat/completions"))) // the new connection, as the tunnel's handshake made it
		floorUpload = append(floorUpload, o.upload(c, o.floorURL("/v1/echo/upload")))
		c.CloseIdleConnections()
	}
	for range 3 {
		c := o.client()
		o.concurrent(c, o.floorURL("/v1/chat/completions"), 100) // opens 100 connections
		floorBurst = append(floorBurst, medianOf(o.concurrent(c, o.floorURL("/v1/chat/completions"), 100)))
		c.CloseIdleConnections()
	}
	warm := o.warmFloor()
	return []wanRow{
		{order: 1, name: "first 1 MiB on a fresh tunnel connection", floor: slices.Min(floorUpload), llmesh: slices.Min(upload),
			goal: "≤ +0.25 RTT", note: fmt.Sprintf("best of 5 (medians %s and %s); floor: a new connection straight to the provider",
				ms(medianOf(floorUpload)), ms(medianOf(upload)))},
		{order: 3, name: "100 concurrent small requests on a fresh tunnel", floor: medianOf(floorBurst), llmesh: medianOf(burst),
			goal: "≤ +0.25 RTT (median added)", note: "median request, median of 3 bursts; floor: 100 kept-alive connections"},
		{order: 9, name: "first request on a tunnel not connected yet (reference: the handshake)", floor: warm,
			llmesh: medianOf(first), goal: "none: TCP, TLS 1.3 and HTTP/2 take ~3 RTT", reference: true,
			note: "median of 8, sent as a new ingress starts connecting; floor: a warm request"},
	}
}

func (o *ocean) upload(c *http.Client, url string) time.Duration {
	const n = 1 << 20
	return o.must(o.send(c, url, io.LimitReader(zeroReader{}, n), n, nil)).took
}

// warmLocal opens n connections from host A to the ingress (GET /health,
// which the ingress answers itself), so a burst finds them open.
func (o *ocean) warmLocal(n int) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := o.local.Get("http://" + oceanIngressHTTP + "/health")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
}

// concurrent sends n small requests at once and returns their times.
func (o *ocean) concurrent(c *http.Client, url string, n int) []time.Duration {
	xs := make([]exchange, n)
	var wg sync.WaitGroup
	for i := range xs {
		wg.Go(func() { xs[i] = o.small(c, url) })
	}
	wg.Wait()
	out := make([]time.Duration, n)
	for i, x := range xs {
		out[i] = o.must(x).took
	}
	return out
}

// warmFloor is a small request's time on a warm connection straight to the
// provider (median of 5).
func (o *ocean) warmFloor() time.Duration {
	var ds []time.Duration
	for range 5 {
		ds = append(ds, o.must(o.small(o.floor, o.floorURL("/v1/chat/completions"))).took)
	}
	return medianOf(ds)
}

// egressBack kills the egress (SIGKILL) while requests keep coming, one
// every 20 ms, starts it again 7 s later at the same address, and times
// the first 200 through the ingress from the moment the new egress process
// logged that it started. Three times; the median.
func (o *ocean) egressBack() wanRow {
	var took []time.Duration
	for range 3 {
		took = append(took, o.killAndBack("wan-e1"))
	}
	// The floor: a request on a new connection straight to the provider,
	// all a client must wait for once the far side is back.
	c := o.client()
	defer c.CloseIdleConnections()
	floor := o.must(o.small(c, o.floorURL("/v1/chat/completions"))).took
	return wanRow{order: 5, name: "egress killed and back 7 s later, same address: first 200 after it is back", floor: floor,
		llmesh: medianOf(took), absolute: 1500 * time.Millisecond, goal: "≤ 1.5 s",
		note: fmt.Sprintf("median of %s; requests every 20 ms throughout; floor: a new connection straight to the provider", msList(took))}
}

func (o *ocean) killAndBack(name string) time.Duration {
	old := o.egress[name]
	old.cmd.Process.Signal(syscall.SIGKILL)
	<-old.done
	got := make(chan time.Time, 1)
	stop := make(chan struct{})
	go func() {
		// Traffic goes on: requests fail fast (503) until the egress is back.
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			select {
			case <-stop:
				return
			default:
			}
			x := o.small(o.local, o.meshURL("/v1/chat/completions"))
			if x.err == nil && x.status == 200 {
				got <- x.sent.Add(x.took)
				return
			}
		}
		close(got)
	}()
	time.Sleep(7 * time.Second) // the scenario: 7 s down
	select {
	case <-got:
		o.t.Fatal("a 200 while the egress was down")
	default:
	}
	p := o.startEgress(name, o.hosts.B.Addr.String())
	back := logTime(o.t, p, `node started`)
	at, ok := <-got
	close(stop)
	if !ok {
		o.t.Fatal("no 200 within 90 s of the egress being killed")
	}
	return at.Sub(back)
}

// connecting starts a second egress and, the moment the ingress starts
// connecting to it, sends 20 requests 10 ms apart: those routed to the
// connection still connecting wait for its handshake.
func (o *ocean) connecting() wanRow {
	from := logLines(o.ingress)
	o.startE2()
	o.waitLog(o.ingress, from, `tunnel: connecting to egress" egress=wan-e2 `)
	xs := o.spaced(20, 10*time.Millisecond)
	var toNew, all []time.Duration
	for _, x := range xs {
		o.must(x)
		all = append(all, x.took)
		if x.egress == "wan-e2" {
			toNew = append(toNew, x.took)
		}
	}
	row := wanRow{order: 8, name: "requests routed to a connection still connecting", floor: o.warmFloor(),
		goal: "prefer ready connections (≤ +0.25 RTT)"}
	if len(toNew) > 0 {
		row.llmesh = medianOf(toNew)
		row.note = fmt.Sprintf("median of the %d of 20 requests sent to it", len(toNew))
	} else {
		row.llmesh = medianOf(all)
		row.note = "none of 20 requests was sent to it: median of all"
	}
	o.waitThrough2()
	return row
}

// startE2 starts the second egress, on its own address in host B.
func (o *ocean) startE2() {
	if err := o.hosts.AddAddr(o.hosts.B, netip.MustParseAddr(oceanE2Addr)); err != nil {
		o.t.Fatal(err)
	}
	o.startEgress("wan-e2", oceanE2Addr)
}

// waitThrough2 waits until the ingress has used both egress nodes.
func (o *ocean) waitThrough2() {
	seen := map[string]bool{}
	wait.For(o.t, 30*time.Second, func() error {
		x := o.small(o.local, o.meshURL("/v1/chat/completions"))
		if x.err == nil && x.status == 200 {
			seen[x.egress] = true
		}
		if !seen["wan-e1"] || !seen["wan-e2"] {
			return fmt.Errorf("requests served by %v, want both egress nodes", seen)
		}
		return nil
	})
}

// spaced sends n small requests through the ingress, one every gap, each
// on its own, and returns them once all ended.
func (o *ocean) spaced(n int, gap time.Duration) []exchange {
	xs := make([]exchange, n)
	var wg sync.WaitGroup
	for i := range xs {
		wg.Go(func() { xs[i] = o.small(o.local, o.meshURL("/v1/chat/completions")) })
		time.Sleep(gap)
	}
	wg.Wait()
	return xs
}

// silentCut drops every packet to and from wan-e2 (its host falls off the
// network, nothing is closed) while requests arrive every 50 ms for 5 s:
// the worst time any of them waited for its 200.
func (o *ocean) silentCut() wanRow {
	if o.egress["wan-e2"] == nil {
		o.startE2()
		o.waitThrough2()
	}
	addr := netip.MustParseAddr(oceanE2Addr)
	o.hosts.Link.Cut(addr)
	xs := o.spaced(100, 50*time.Millisecond)
	o.hosts.Link.Restore(addr)
	var worst time.Duration
	failed, toCut := 0, 0
	for _, x := range xs {
		worst = max(worst, x.took)
		if x.err != nil || x.status != 200 {
			failed++
		}
		if x.egress == "wan-e2" {
			toCut++
		}
	}
	note := fmt.Sprintf("slowest of 100 requests sent over 5 s from the cut; %d failed", failed)
	if toCut > 0 {
		note += fmt.Sprintf(", %d answered by the cut egress", toCut)
	}
	return wanRow{order: 6, name: "one of two egress nodes silently cut off: served by the other", floor: o.warmFloor(),
		llmesh: worst, absolute: 3 * time.Second, goal: "≤ 3 s, none failed", note: note}
}

// afterIdle: the first request after WAN_IDLE (31m to measure the row:
// grpc-go closes a channel after 30 min without requests unless told not
// to) without any traffic, against the floor's kept-alive connection after
// the same silence. Without WAN_IDLE the row is not run: it takes that long.
func (o *ocean) afterIdle() wanRow {
	row := wanRow{order: 7, name: "first request after 30 min without traffic", goal: "0 extra RTT"}
	v := os.Getenv("WAN_IDLE")
	if v == "" {
		row.skipped = "not run: WAN_IDLE=31m runs it (31 minutes)"
		return row
	}
	idle, err := time.ParseDuration(v)
	if err != nil || idle <= 0 {
		o.t.Fatalf("WAN_IDLE=%q: want a positive duration", v)
	}
	o.must(o.small(o.floor, o.floorURL("/v1/chat/completions")))
	o.must(o.small(o.local, o.meshURL("/v1/chat/completions")))
	time.Sleep(idle) // the scenario: no traffic at all
	row.floor = o.must(o.small(o.floor, o.floorURL("/v1/chat/completions"))).took
	row.llmesh = o.must(o.small(o.local, o.meshURL("/v1/chat/completions"))).took
	row.note = fmt.Sprintf("one request each after %s without traffic", idle)
	return row
}

// wanTable prints the rows.
func wanTable(link wan.Config, check string, rows []wanRow, took time.Duration) string {
	rtt := link.RTT()
	var b strings.Builder
	fmt.Fprintf(&b, "\nAcross oceans: emulated link %s RTT, %g Mbit/s, %g %% loss (internal/wan)%s; %s.\n",
		rtt, float64(link.Rate)/1e6, link.Loss*100, initCwndNote(), check)
	fmt.Fprintf(&b, "Added = llmesh - floor; in RTTs of %s. Took %s.\n\n", rtt, took.Round(time.Second))
	fmt.Fprintln(&b, "| | floor | llmesh | added | added (RTT) | goal | met | how |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		if r.skipped != "" {
			fmt.Fprintf(&b, "| %s | | | | | %s | | %s |\n", r.name, r.goal, r.skipped)
			continue
		}
		met := "no"
		switch {
		case r.reference:
			met = "—"
		case r.met(rtt):
			met = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %+.0f ms | %+.2f | %s | %s | %s |\n", r.name, ms(r.floor), ms(r.llmesh),
			float64(r.added())/1e6, float64(r.added())/float64(rtt), r.goal, met, r.note)
	}
	return b.String()
}

// initCwndNote names the routes' initial window when WAN_INITCWND set one.
func initCwndNote() string {
	if v := os.Getenv("WAN_INITCWND"); v != "" {
		return ", routes with initcwnd " + v
	}
	return ""
}

func msList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, ms(d))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/1e6) }

func secList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(parts, " and ") + " s"
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// logTime waits for a line of p's log matching re and returns the time the
// line carries (slog's time=, millisecond precision).
func logTime(t *testing.T, p *process, re string) time.Time {
	t.Helper()
	line := p.field(t, `(.*`+re+`.*)`)
	m := regexp.MustCompile(`time=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no time= in %q", line)
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatalf("time in %q: %v", line, err)
	}
	return at
}

// bodyStamps records when the last byte of each marked request body
// reached the provider.
type bodyStamps struct {
	mu sync.Mutex
	at map[string]time.Time
}

const bodyStampHeader = "X-Wan-Body-Id"

func (s *bodyStamps) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(bodyStampHeader); id != "" && r.Body != nil {
			r.Body = &stampedBody{ReadCloser: r.Body, done: func() {
				s.mu.Lock()
				s.at[id] = time.Now()
				s.mu.Unlock()
			}}
		}
		h.ServeHTTP(w, r)
	})
}

func (s *bodyStamps) get(t *testing.T, id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.at[id]
	if !ok {
		t.Fatalf("the provider never saw the end of body %s", id)
	}
	return at
}

type stampedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *stampedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.once.Do(b.done)
	}
	return n, err
}

// pacedReader yields n zero bytes at rate bytes per second, 16 KiB at a
// time, each chunk at its scheduled time from the first Read.
type pacedReader struct {
	n, rate, sent int64
	start         time.Time
}

func (r *pacedReader) Read(p []byte) (int, error) {
	if r.sent >= r.n {
		return 0, io.EOF
	}
	if r.start.IsZero() {
		r.start = time.Now()
	}
	due := r.start.Add(time.Duration(r.sent * int64(time.Second) / r.rate))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
	m := min(int64(len(p)), 16<<10, r.n-r.sent)
	clear(p[:m])
	r.sent += m
	return int(m), nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
