package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// setup is one row of the table: the proxy processes it starts (none for
// DIRECT) and where the load generator sends its chat completions.
type setup struct {
	name     string
	path     string // chat completions, as this setup serves them
	start    func(r *runner) (procs []*process, base string, err error)
	provider string // the provider's kind (see providerKinds)
}

// setups are the rows in the order they run. against names a second build
// of llmesh ("" = none), measured after the first. env is added to the
// environment of this checkout's nodes (not the other build's), and named
// in their rows. DIRECT and the floors call the first of kinds (the
// providers' protocols); the llmesh rows run once per kind, named by it
// when there are several. The floors run again after llmesh when bracket
// is set, so drift during the run shows.
func setups(bracket bool, against string, env []string, kinds []string) []setup {
	suffix := ""
	if len(env) > 0 {
		suffix = " (" + strings.Join(env, " ") + ")"
	}
	const chat, meshChat = "/v1/chat/completions", "/openai/v1/chat/completions"
	first := kinds[0]
	direct := setup{"DIRECT (no proxy)", chat, func(r *runner) ([]*process, string, error) {
		return nil, r.provider.URL, nil
	}, first}
	floor := setup{"Go floor", chat, startFloor, first}
	twoHop := setup{"two-hop floor", chat, startTwoHop, first}
	list := []setup{direct, floor, twoHop}
	builds := []struct{ bin, label string }{{".", suffix}}
	if against != "" {
		builds = append(builds, struct{ bin, label string }{againstDir, " (" + against + ")"})
	}
	for _, b := range builds {
		e := env
		if b.bin != "." {
			e = nil
		}
		for _, k := range kinds {
			label := b.label
			if len(kinds) > 1 {
				label = " " + k + label
			}
			list = append(list,
				setup{"llmesh direct" + label, meshChat, startDirect(b.bin, e), k},
				setup{"llmesh tunnel" + label, meshChat, startTunnel(b.bin, e), k},
			)
		}
	}
	if bracket {
		floor.name += " (again)"
		twoHop.name += " (again)"
		list = append(list, floor, twoHop)
	}
	return list
}

var floorListening = regexp.MustCompile(`listening (http://\S+)`)

func startFloor(r *runner) ([]*process, string, error) {
	p, err := r.start("floor", "floor", "-target", r.provider.URL)
	if err != nil {
		return nil, "", err
	}
	base, err := p.waitFor(floorListening)
	return []*process{p}, base, err
}

// startTwoHop chains two floors: the load generator → floor 1 → floor 2 →
// the provider, the reference for an ingress and an egress.
func startTwoHop(r *runner) ([]*process, string, error) {
	second, err := r.start("floor-2", "floor", "-target", r.provider.URL)
	if err != nil {
		return nil, "", err
	}
	procs := []*process{second}
	target, err := second.waitFor(floorListening)
	if err != nil {
		return procs, "", err
	}
	first, err := r.start("floor-1", "floor", "-target", target)
	if err != nil {
		return procs, "", err
	}
	procs = []*process{first, second} // in the order requests cross them
	base, err := first.waitFor(floorListening)
	return procs, base, err
}

// The nodes log at info, one access log line per request, as in
// production (unless -log says otherwise); their logs go to files in the
// run's temporary directory. They are told their addresses, so that the
// harness needs no log line from them.
const (
	// %[1]s: http.listen; %[2]s: the provider's URL.
	directConfig = `node: {name: bench-direct, loc: US}
http: {listen: "%[1]s", max_in_flight: 16384}
gossip: {bind: "127.0.0.1:0", profile: local}
drain_timeout: 1s
providers:
  openai: {base_url: "%[2]s"}
`
	// %[1]s: gossip.bind; %[2]s: the provider's URL. tunnel.max_streams
	// (and every node's http.max_in_flight) is raised above the 10,000
	// streams of the idle phase, so the rows measure the nodes rather than
	// their admission caps.
	egressConfig = `node: {name: bench-egress, loc: US, hint: wnam}
http: {listen: "127.0.0.1:0", max_in_flight: 16384}
tunnel: {listen: "127.0.0.1:0", token: bench-token, max_streams: 16384}
gossip: {bind: "%[1]s", profile: local}
drain_timeout: 1s
providers:
  openai: {base_url: "%[2]s"}
`
	// %[1]s: http.listen; %[2]s: the egress's gossip address. The
	// ingress's own provider address is closed: a 200 can only have come
	// through the tunnel.
	ingressConfig = `node: {name: bench-ingress, loc: HK}
http: {listen: "%[1]s", max_in_flight: 16384}
tunnel: {token: bench-token, insecure: true}
gossip: {bind: "127.0.0.3:0", profile: local, join: ["%[2]s"]}
routing:
  rules: [{locs: [HK], hint: wnam}]
drain_timeout: 1s
providers:
  openai: {base_url: "http://127.0.0.1:9"}
`
)

// againstDir is where the second build's binaries go, under the run's
// directory.
const againstDir = "against"

// startDirect runs an ingress built into bin, a directory of the run's.
func startDirect(bin string, env []string) func(r *runner) ([]*process, string, error) {
	return func(r *runner) ([]*process, string, error) {
		addr, err := freeAddr("127.0.0.1")
		if err != nil {
			return nil, "", err
		}
		cfg, err := r.writeConfig("direct.yaml", fmt.Sprintf(directConfig, addr, r.provider.URL))
		if err != nil {
			return nil, "", err
		}
		p, err := r.startEnv("ingress", filepath.Join(bin, "ingress"), env, "-config", cfg)
		if err != nil {
			return nil, "", err
		}
		return []*process{p}, "http://" + addr, p.waitListening(addr)
	}
}

// startTunnel runs an egress, then an ingress that joins it, both built
// into bin.
func startTunnel(bin string, env []string) func(r *runner) ([]*process, string, error) {
	return func(r *runner) ([]*process, string, error) {
		gossip, err := freeAddr("127.0.0.2")
		if err != nil {
			return nil, "", err
		}
		addr, err := freeAddr("127.0.0.1")
		if err != nil {
			return nil, "", err
		}
		cfg, err := r.writeConfig("egress.yaml", fmt.Sprintf(egressConfig, gossip, r.provider.URL))
		if err != nil {
			return nil, "", err
		}
		egress, err := r.startEnv("egress", filepath.Join(bin, "egress"), env, "-config", cfg)
		if err != nil {
			return nil, "", err
		}
		procs := []*process{egress}
		if err := egress.waitListening(gossip); err != nil {
			return procs, "", err
		}
		if cfg, err = r.writeConfig("ingress.yaml", fmt.Sprintf(ingressConfig, addr, gossip)); err != nil {
			return procs, "", err
		}
		ingress, err := r.startEnv("ingress-tunnel", filepath.Join(bin, "ingress"), env, "-config", cfg)
		if err != nil {
			return procs, "", err
		}
		procs = []*process{ingress, egress} // in the order requests cross them
		return procs, "http://" + addr, ingress.waitListening(addr)
	}
}

// freeAddr finds a port on host that is free for TCP and UDP (gossip uses
// both), for a node to listen on.
func freeAddr(host string) (string, error) {
	var err error
	for range 10 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", host+":0"); err != nil {
			continue
		}
		addr := ln.Addr().String()
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free port on %s: %w", host, err)
}

// process is one proxy process under test.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string // its stdout and stderr
	cpus   string // Cpus_allowed_list, read once started
	exited chan struct{}
}

// writeConfig writes a node's config file, with the run's log level when
// one was asked for.
func (r *runner) writeConfig(name, text string) (string, error) {
	if r.opts.NodeLog != "" {
		text += "log: {level: " + r.opts.NodeLog + "}\n"
	}
	path := filepath.Join(r.dir, name)
	return path, os.WriteFile(path, []byte(text), 0o600)
}

// start runs the built command bin with args on the proxies' CPU.
func (r *runner) start(name, bin string, args ...string) (*process, error) {
	return r.startEnv(name, bin, nil, args...)
}

// startEnv is start with env added to the inherited environment.
func (r *runner) startEnv(name, bin string, env []string, args ...string) (*process, error) {
	p := &process{name: name, log: filepath.Join(r.dir, name+".log"), exited: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own descriptor
	p.cmd = exec.Command(filepath.Join(r.dir, bin), args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if len(env) > 0 || len(r.childEnv) > 0 {
		p.cmd.Env = append(append(os.Environ(), r.childEnv...), env...)
	}
	if err := StartOn(p.cmd, r.proxyCPU); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	if p.cpus, err = AllowedCPUs(p.cmd.Process.Pid); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// startTimeout bounds the wait for a process's start line.
const startTimeout = 20 * time.Second

// waitFor polls the process's log until re matches and returns its first
// group.
func (p *process) waitFor(re *regexp.Regexp) (string, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		b, err := os.ReadFile(p.log)
		if err != nil {
			return "", err
		}
		if m := re.FindSubmatch(b); m != nil {
			return string(m[1]), nil
		}
		select {
		case <-p.exited:
			return "", fmt.Errorf("%s exited (%v) before logging %q:\n%s", p.name, p.cmd.ProcessState, re, tail(b))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not log %q within %v:\n%s", p.name, re, startTimeout, tail(b))
		}
	}
}

// waitListening waits until the process accepts TCP connections on addr.
func (p *process) waitListening(addr string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.cmd.ProcessState, tail(b))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s does not listen on %s after %v:\n%s", p.name, addr, startTimeout, tail(b))
		}
	}
}

// tail is the end of a log, for an error message.
func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// stop ends the process: SIGTERM, then SIGKILL if it lingers.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// cpuTime is the CPU time of all the processes together.
func cpuTime(procs []*process) (time.Duration, error) {
	var sum time.Duration
	for _, p := range procs {
		t, err := CPUTime(p.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// waitReady sends chat completions until one is answered.
func waitReady(ctx context.Context, do func(context.Context) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := do(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(errors.New("not ready within 30 s"), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
