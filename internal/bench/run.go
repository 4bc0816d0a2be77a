package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/sys/unix"
)

// Options of one run.
type Options struct {
	Quick   bool     // a smoke run of about 30 s: short phases, no second floor rows
	Go      string   // the go command that builds the binaries
	Root    string   // the module's directory
	PerfDir string   // if set, perf record the llmesh rows' closed loops and write reports here
	Against string   // if set, another checkout of llmesh whose ingress and egress are measured too
	NodeLog string   // the nodes' log.level; "" = their default, info (an access-log line per request)
	Only    string   // if set, only DIRECT and the rows whose name contains it
	Env     []string // KEY=VALUE added to the environment of this checkout's nodes (GOGC, GOMEMLIMIT), not -against's
	Idle    int      // if set, the idle streams of the idle phase (default 10,000; -quick 1000)
	// Providers are the fake provider's protocols (providerKinds): the
	// DIRECT and floor rows call the first, the llmesh rows run once per
	// provider. Empty means the default, h2.
	Providers []string
	Out       io.Writer // the table
	Log       io.Writer // progress
}

// plan is how long and how hard each phase runs.
type plan struct {
	warmup, closed time.Duration
	workers        int // closed-loop concurrency
	rate           int // open-loop requests per second
	open           time.Duration
	streams        []streamPlan
	idle           idlePlan
	bracket        bool // run the floors again after llmesh
}

// The streams' events come 100 ms apart: at 1000 streams that is 10,000
// events a second, which leaves the load side (one CPU for the load
// generator and the fake provider) headroom; at 50 ms it ran near 75%.
func newPlan(quick bool) plan {
	if quick {
		return plan{
			warmup: 200 * time.Millisecond, closed: time.Second, workers: 32,
			rate: 500, open: time.Second,
			streams: []streamPlan{
				{n: 100, events: 5, delay: 100 * time.Millisecond, run: time.Second},
				{n: 1000, events: 5, delay: 100 * time.Millisecond, run: time.Second},
			},
			idle: idlePlan{n: 1000, every: time.Second, settle: time.Second, opening: 256},
		}
	}
	return plan{
		warmup: 500 * time.Millisecond, closed: 3 * time.Second, workers: 32,
		rate: 500, open: 5 * time.Second,
		streams: []streamPlan{
			{n: 100, events: 20, delay: 100 * time.Millisecond, run: 3 * time.Second},
			{n: 1000, events: 20, delay: 100 * time.Millisecond, run: 3 * time.Second},
		},
		idle:    idlePlan{n: 10000, every: 5 * time.Second, settle: 5 * time.Second, opening: 256},
		bracket: true,
	}
}

// maxConns is the most connections the load generator keeps to one setup
// in the streaming phases (the idle phase has one per idle stream).
const maxConns = 2048

// runner holds what every row shares.
type runner struct {
	opts     Options
	plan     plan
	dir      string               // binaries, configs, logs; removed at the end
	provider *provider            // the provider of the row being measured
	byKind   map[string]*provider // every provider of the run
	childEnv []string             // added to every proxy's environment: SSL_CERT_FILE
	loadCPU  int                  // -1: not pinned
	proxyCPU int
}

// row is what one setup measured.
type row struct {
	name      string
	procs     []string // name: Cpus_allowed_list
	cpuPerReq time.Duration
	rps       float64
	open      Summary
	streams   []streamResult
	rss       []int64
	idle      []int64 // RSS per idle stream, per process
	errors    int
	proxied   bool
	others    string // other processes' use of the two CPUs meanwhile
}

// Run builds the binaries, measures every setup and prints the table.
func Run(ctx context.Context, opts Options) error {
	r := &runner{opts: opts, plan: newPlan(opts.Quick), loadCPU: -1, proxyCPU: -1}
	for _, k := range opts.Providers {
		if !slices.Contains(providerKinds, k) {
			return fmt.Errorf("-provider %q: want %s, or a comma list of them", k, strings.Join(providerKinds, " or "))
		}
	}
	if opts.Idle > 0 {
		r.plan.idle.n = opts.Idle
	}
	dir, err := os.MkdirTemp("", "llmesh-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r.dir = dir

	if err := r.build(ctx, opts.Root, dir, "./cmd/ingress", "./cmd/egress", "./internal/bench/cmd/floor"); err != nil {
		return err
	}
	label := ""
	if opts.Against != "" {
		label = filepath.Base(filepath.Clean(opts.Against))
		if err := r.build(ctx, opts.Against, filepath.Join(dir, againstDir), "./cmd/ingress", "./cmd/egress"); err != nil {
			return err
		}
	}
	machine, err := r.pin()
	if err != nil {
		return err
	}
	// Each idle stream holds a connection to the proxy and one from it,
	// here (the fake provider) or in a proxy process, which inherits the
	// limit.
	limit, err := raiseFileLimit(uint64(2*max(maxConns, r.plan.idle.n) + fileMargin))
	if err != nil {
		return err
	}
	if fit := (int(limit) - fileMargin) / 2; fit < r.plan.idle.n {
		r.logf("the open-file limit is %d: %d idle streams instead of %d (raise ulimit -Hn, or run with CAP_SYS_RESOURCE, for more)", limit, fit, r.plan.idle.n)
		r.plan.idle.n = fit
	}
	var kinds []string
	for _, k := range opts.Providers {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		kinds = providerKinds[:1]
	}
	defer func() {
		for _, p := range r.byKind {
			p.Close()
		}
	}()
	if err := r.startProviders(kinds); err != nil {
		return err
	}

	var rows []row
	for i, s := range setups(r.plan.bracket, label, opts.Env, kinds) {
		if i > 0 && !strings.Contains(s.name, opts.Only) {
			continue
		}
		r.provider = r.byKind[s.provider]
		res, err := r.measure(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, res)
	}
	return r.print(rows, machine, kinds)
}

// startProviders starts one provider per kind (into r.byKind, which the
// caller closes), and writes the certificate
// of the HTTPS one where the proxies' SSL_CERT_FILE finds it (Go reads its
// roots from that file on Linux, so the nodes need no config key).
func (r *runner) startProviders(kinds []string) error {
	r.byKind = map[string]*provider{}
	for _, k := range kinds {
		p, err := startProvider(k)
		if err != nil {
			return err
		}
		r.byKind[k] = p
		if p.caPEM == nil {
			continue
		}
		ca := filepath.Join(r.dir, "provider-ca.pem")
		if err := os.WriteFile(ca, p.caPEM, 0o644); err != nil {
			return err
		}
		r.childEnv = append(r.childEnv, "SSL_CERT_FILE="+ca)
	}
	return nil
}

// build compiles the packages of the module in root into out. It runs
// before pinning, so the compiler has every CPU.
func (r *runner) build(ctx context.Context, root, out string, pkgs ...string) error {
	r.logf("building %s of %s into %s", strings.Join(pkgs, " "), root, out)
	cmd := exec.CommandContext(ctx, r.opts.Go, append([]string{"build", "-o", out + "/"}, pkgs...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, r.opts.Log, r.opts.Log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build in %s: %w", root, err)
	}
	return nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Log, "bench: "+format+"\n", args...)
}

// pin puts this process (the load generator and the fake provider) on the
// first CPU it may use and the proxies on the second; with one CPU nothing
// is pinned. It returns the description of the machine and the pinning.
func (r *runner) pin() (string, error) {
	cpus, err := CPUs()
	if err != nil {
		return "", err
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	machine := fmt.Sprintf("%d CPUs (%s), Linux %s, %s", len(cpus), cpuModel(), unix.ByteSliceToString(uts.Release[:]), runtime.Version())
	if len(cpus) < 2 {
		return machine + "\npinning: none, only one CPU is available: the load generator, the fake provider and the proxies share it", nil
	}
	r.loadCPU, r.proxyCPU = cpus[0], cpus[1]
	if err := PinSelf(r.loadCPU); err != nil {
		return "", err
	}
	self, err := AllowedCPUs(os.Getpid())
	if err != nil {
		return "", err
	}
	return machine + fmt.Sprintf("\npinning: load generator and fake provider (one process, GOMAXPROCS 1) on CPU %d (Cpus_allowed_list %s); every proxy process on CPU %d (sched_setaffinity before exec, as taskset -c %[3]d)",
		r.loadCPU, self, r.proxyCPU), nil
}

// cpuModel is the first model name of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// fileMargin is the descriptors a process needs besides its connections
// of the largest phase: listeners, gossip, logs, the other phases' leftovers.
const fileMargin = 512

// raiseFileLimit raises this process's open-file limit, which the proxies
// inherit, to want, or as close as the hard limit allows when it cannot
// raise that (without CAP_SYS_RESOURCE), and returns the limit it set.
// Setting it explicitly also stops Go from restoring the original soft
// limit in children.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Max < want && lim.Max != unix.RLIM_INFINITY {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if lim.Cur < 2*maxConns+fileMargin {
		return 0, fmt.Errorf("the open-file limit is %d, the 1000-stream phase needs %d: raise it (ulimit -Hn)", lim.Cur, 2*maxConns+fileMargin)
	}
	return min(lim.Cur, want), syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// measure runs every phase against one setup.
func (r *runner) measure(ctx context.Context, s setup) (res row, err error) {
	r.logf("%s: starting", s.name)
	procs, base, err := s.start(r)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	if err != nil {
		return res, err
	}
	res = row{name: s.name, proxied: len(procs) > 0}
	for _, p := range procs {
		res.procs = append(res.procs, p.name+": "+p.cpus)
	}
	url := base + s.path
	client := newClient(maxConns)
	r.provider.trust(client) // DIRECT calls it
	defer client.CloseIdleConnections()
	do := func(ctx context.Context) error { return chat(ctx, client, url, false) }
	if err := waitReady(ctx, do); err != nil {
		return res, err
	}
	others := r.others(procs)
	replayed := func(ctx context.Context) error { return chat(ctx, client, url, true) }
	if err := r.closedPhase(ctx, s.name, procs, replayed, &res); err != nil {
		return res, err
	}
	r.openPhase(ctx, s.name, do, &res)
	if err := r.streamPhases(ctx, s.name, procs, client, url, &res); err != nil {
		return res, err
	}
	res.others = others()
	if len(procs) > 0 {
		for _, p := range procs {
			p.stop()
		}
		if err := r.idlePhase(ctx, s, &res); err != nil {
			return res, err
		}
	}
	return res, ctx.Err()
}

// idlePhase starts the setup's processes again, so that nothing the other
// phases left behind is counted or reused, and measures their RSS growth
// per idle stream.
func (r *runner) idlePhase(ctx context.Context, s setup, res *row) error {
	ip := r.plan.idle
	r.logf("%s: %d idle streams, a byte every %v, RSS read %v after the last opened", s.name, ip.n, ip.every, ip.settle)
	procs, base, err := s.start(r)
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	if err != nil {
		return err
	}
	url := base + s.path
	client := newClient(ip.n)
	r.provider.trust(client)
	defer client.CloseIdleConnections()
	if err := waitReady(ctx, func(ctx context.Context) error { return chat(ctx, client, url, false) }); err != nil {
		return err
	}
	before, err := rss(procs)
	if err != nil {
		return err
	}
	var now []int64
	busy := r.busy()
	failed := idleStreams(ctx, client, url, ip, func() { now, err = rss(procs) })
	busy()
	r.provider.Reset()
	if err != nil || now == nil {
		return errors.Join(errors.New("idle streams: RSS not read"), err, ctx.Err())
	}
	res.idle = perStream(before, now, ip.n)
	res.errors += failed
	return nil
}

// rss is each process's resident set size.
func rss(procs []*process) ([]int64, error) {
	out := make([]int64, len(procs))
	for i, p := range procs {
		v, err := RSS(p.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// closedPhase measures CPU per request and requests per second.
func (r *runner) closedPhase(ctx context.Context, name string, procs []*process, do func(context.Context) error, res *row) error {
	closedLoop(ctx, r.plan.workers, r.plan.warmup, do)
	r.provider.replayed.Store(0)
	r.logf("%s: closed loop, %d workers, %v", name, r.plan.workers, r.plan.closed)
	stopPerf := r.perf(name, procs)
	defer stopPerf()
	cpu0, err := cpuTime(procs)
	if err != nil {
		return err
	}
	start, busy := time.Now(), r.busy()
	ok, failed := closedLoop(ctx, r.plan.workers, r.plan.closed, do)
	elapsed := time.Since(start)
	busy()
	cpu1, err := cpuTime(procs)
	if err != nil {
		return err
	}
	if ok == 0 {
		return fmt.Errorf("no request answered in the closed loop (%d failed)", failed)
	}
	if n := r.provider.replayed.Swap(0); n < int64(ok) {
		return fmt.Errorf("%d requests answered but %d replayed: the proxy did not pass %s on", ok, n, headerReplay)
	}
	res.cpuPerReq = (cpu1 - cpu0) / time.Duration(ok)
	res.rps = float64(ok) / elapsed.Seconds()
	res.errors += failed
	return nil
}

// openPhase measures latency at a fixed rate.
func (r *runner) openPhase(ctx context.Context, name string, do func(context.Context) error, res *row) {
	r.logf("%s: open loop, %d/s for %v", name, r.plan.rate, r.plan.open)
	lat, failed := openLoop(ctx, r.plan.rate, r.plan.open, do)
	res.open, res.errors = Summarize(lat), res.errors+failed
	r.provider.Reset()
}

// streamPhases holds the planned numbers of streams open, and reads the
// processes' peak RSS over the last (largest) phase.
func (r *runner) streamPhases(ctx context.Context, name string, procs []*process, client *http.Client, url string, res *row) error {
	for i, sp := range r.plan.streams {
		r.logf("%s: %d streams of %d events %v apart, for %v after a ramp of %v", name, sp.n, sp.events, sp.delay, sp.run, sp.length())
		last := i == len(r.plan.streams)-1
		if last {
			for _, p := range procs {
				if err := ResetPeakRSS(p.cmd.Process.Pid); err != nil {
					return fmt.Errorf("reset the peak RSS of %s: %w", p.name, err)
				}
			}
		}
		busy := r.busy()
		sr := streams(ctx, client, url, sp)
		busy()
		res.streams = append(res.streams, sr)
		res.errors += sr.Errors
		r.provider.Reset()
		if !last {
			continue
		}
		for _, p := range procs {
			rss, err := PeakRSS(p.cmd.Process.Pid)
			if err != nil {
				return err
			}
			res.rss = append(res.rss, rss)
		}
	}
	return nil
}

// busy logs, when the returned function is called, how much of a CPU
// this process (the load generator and the fake provider) used since: near
// 100% the load side, not the proxy, may be what limits a phase.
func (r *runner) busy() func() {
	pid, start := os.Getpid(), time.Now()
	cpu0, err0 := CPUTime(pid)
	return func() {
		cpu1, err1 := CPUTime(pid)
		if err0 == nil && err1 == nil {
			r.logf("  load generator and fake provider used %.0f%% of a CPU", 100*float64(cpu1-cpu0)/float64(time.Since(start)))
		}
	}
}

// others measures, until the returned function is called, how busy the
// load CPU and the proxy CPU were with anything but this process and the
// proxies, steal time included: other programs on a shared machine, or
// other virtual machines on the host, are the usual reason two runs differ. The CPUs' ticks include some of the kernel's network work on our
// behalf, so a few percent is normal.
func (r *runner) others(procs []*process) func() string {
	if r.loadCPU < 0 {
		return func() string { return none }
	}
	start := time.Now()
	busy0, err0 := CPUBusy()
	self0, err1 := CPUTime(os.Getpid())
	proxies0, err2 := cpuTime(procs)
	return func() string {
		busy1, err3 := CPUBusy()
		self1, err4 := CPUTime(os.Getpid())
		proxies1, err5 := cpuTime(procs)
		if err := errors.Join(err0, err1, err2, err3, err4, err5); err != nil {
			r.logf("others' CPU: %v", err)
			return none
		}
		pct := func(cpu int, ours time.Duration) string {
			d := busy1[cpu] - busy0[cpu] - ours
			return fmt.Sprintf("%.0f%%", max(0, 100*float64(d)/float64(time.Since(start))))
		}
		return pct(r.loadCPU, self1-self0) + " / " + pct(r.proxyCPU, proxies1-proxies0)
	}
}

// perf records the CPU profile of the llmesh processes during the closed
// loop when Options.PerfDir is set; the returned function stops it and
// writes perf report's text beside perf.data.
func (r *runner) perf(name string, procs []*process) (stop func()) {
	if r.opts.PerfDir == "" || !strings.HasPrefix(name, "llmesh") {
		return func() {}
	}
	pids := make([]string, len(procs))
	for i, p := range procs {
		pids[i] = fmt.Sprint(p.cmd.Process.Pid)
	}
	base := filepath.Join(r.opts.PerfDir, strings.Map(func(c rune) rune {
		if unicode.IsLetter(c) || unicode.IsDigit(c) {
			return c
		}
		return '-'
	}, name))
	if err := os.MkdirAll(r.opts.PerfDir, 0o755); err != nil {
		r.logf("perf: %v", err)
		return func() {}
	}
	rec := exec.Command("perf", "record", "-g", "-F", "999", "-o", base+".data", "-p", strings.Join(pids, ","))
	rec.Stdout, rec.Stderr = r.opts.Log, r.opts.Log
	if err := rec.Start(); err != nil {
		r.logf("perf record: %v", err)
		return func() {}
	}
	return func() {
		_ = rec.Process.Signal(os.Interrupt)
		_ = rec.Wait()
		for _, mode := range []string{"children", "no-children"} {
			out, err := exec.Command("perf", "report", "--stdio", "--"+mode, "--sort", "comm,symbol", "-g", "none", "--percent-limit", "0.5", "-i", base+".data").Output()
			if err != nil {
				r.logf("perf report: %v", err)
			}
			_ = os.WriteFile(base+"."+mode+".txt", out, 0o644)
		}
	}
}

// print writes the table and how to read it.
func (r *runner) print(rows []row, machine string, kinds []string) error {
	t := Table{Header: []string{"setup", "CPU/req", "req/s", "added p50", "added p99", "added p99.9"}}
	for _, sp := range r.plan.streams {
		t.Header = append(t.Header, fmt.Sprintf("TTFB p50 / p99, %d streams", sp.n), fmt.Sprintf("max gap, %d streams", sp.n))
	}
	t.Header = append(t.Header, fmt.Sprintf("peak RSS, %d streams", r.plan.streams[len(r.plan.streams)-1].n),
		fmt.Sprintf("RSS per idle stream, %d", r.plan.idle.n), "errors", "others' CPU")
	ref := rows[0].open // DIRECT
	for _, res := range rows {
		cells := []string{res.name, none, fmt.Sprintf("%.0f", res.rps)}
		lat := []string{millis(res.open.P50), millis(res.open.P99), millis(res.open.P999)}
		if res.proxied {
			cells[1] = micros(res.cpuPerReq)
			lat = []string{added(res.open.P50, ref.P50), added(res.open.P99, ref.P99), added(res.open.P999, ref.P999)}
		}
		cells = append(cells, lat...)
		for _, sr := range res.streams {
			cells = append(cells, millis(sr.TTFB.P50)+" / "+millis(sr.TTFB.P99), millis(sr.MaxGap))
		}
		cells = append(cells, mib(res.rss), kib(res.idle), fmt.Sprint(res.errors), res.others)
		t.Rows = append(t.Rows, cells)
	}
	out := r.opts.Out
	if err := t.Write(out); err != nil {
		return err
	}
	p := r.plan
	sp := p.streams[0]
	fmt.Fprintf(out, "\n%s\n", machine)
	for i, k := range kinds {
		which := "the llmesh rows'"
		if i == 0 {
			which = "every row's"
		}
		fmt.Fprintf(out, "provider (%s): %s\n", which, r.byKind[k].describe())
	}
	fmt.Fprintf(out, "CPU/req and req/s: %d closed-loop clients for %v (after %v of warm-up), non-streamed chat completions; CPU is utime+stime of every proxy process.\n", p.workers, p.closed, p.warmup)
	fmt.Fprintf(out, "added pN: open loop, %d requests/s for %v, latency from each request's scheduled send time; DIRECT's row is absolute, the others are minus DIRECT's.\n", p.rate, p.open)
	fmt.Fprintf(out, "streams: SSE of %d events %v apart, each client opening the next as one ends, measured for %v after a %v ramp; TTFB = request sent → response head; gap includes the nominal %v.\n", sp.events, sp.delay, sp.run, sp.length(), sp.delay)
	fmt.Fprintf(out, "idle streams: %d SSE streams open at once on processes started afresh, each sent an event, then 2 bytes every %v; RSS growth (VmRSS) from before the first to %v after the last opened, divided by %[1]d.\n", p.idle.n, p.idle.every, p.idle.settle)
	var procs []string
	for _, res := range rows {
		procs = append(procs, res.procs...)
	}
	slices.Sort(procs)
	fmt.Fprintf(out, "others' CPU: how busy the load CPU / the proxy CPU were with other programs (or, as steal time, other virtual machines) during the row; near 0%% on a quiet machine.\n")
	fmt.Fprintf(out, "proxy processes' Cpus_allowed_list: %s\n", strings.Join(slices.Compact(procs), ", "))
	return nil
}
