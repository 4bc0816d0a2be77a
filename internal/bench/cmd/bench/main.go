// Command bench is make bench: it compares llmesh with no proxy and with
// the Go floor on this machine and prints one table (package
// internal/bench). Run it from the module's root:
//
//	go run ./internal/bench/cmd/bench [-quick] [-only ROW] [-idle N] [-provider h2|h1|h2,h1] [-env KEY=VALUE] [-log LEVEL] [-perf DIR] [-against DIR]
//
// BENCH_QUICK=1 is -quick: a smoke run of about 30 seconds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/llmesh/llmesh/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "a smoke run of about 30 s (also BENCH_QUICK=1)")
	perf := fs.String("perf", "", "perf record the llmesh rows' closed loops into this directory (needs perf)")
	against := fs.String("against", "", "also measure the ingress and egress of the llmesh checkout in this directory (a git worktree of main, say), in the same run")
	nodeLog := fs.String("log", "", "the llmesh nodes' log.level (default info: an access-log line per request, to a file)")
	only := fs.String("only", "", "measure only DIRECT and the rows whose name contains this, e.g. tunnel")
	var env envList
	fs.Var(&env, "env", "KEY=VALUE for the environment of this checkout's nodes, not -against's (repeat it), e.g. GOMEMLIMIT=48MiB; with -against . it measures a runtime setting against none, in one run")
	idle := fs.Int("idle", 0, "idle streams held open at once in the idle phase (default 10000; 1000 with -quick)")
	providers := fs.String("provider", "h2", "the fake provider's protocol: h2 (HTTPS with HTTP/2, as the public APIs) or h1 (plain HTTP/1.1); a comma list (h2,h1) runs the llmesh rows once per provider")
	goCmd := fs.String("go", "go", "the go command that builds the binaries")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(root + "/go.mod"); err != nil {
		return fmt.Errorf("run from the module's root: %w", err)
	}
	return bench.Run(ctx, bench.Options{Quick: *quick, Go: *goCmd, Root: root, PerfDir: *perf, Against: *against, NodeLog: *nodeLog, Only: *only, Env: env, Idle: *idle, Providers: strings.Split(*providers, ","), Out: stdout, Log: stderr})
}

// envList collects repeated -env flags.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}
