package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/llmesh/llmesh/pkg/role"
)

// Main runs role with the process's arguments and signals and returns the
// exit code: SIGINT or SIGTERM drains the node and exits 0; SIGHUP re-reads
// the tunnel certificates.
func Main(r role.Role) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload, stopReload := notifyReload()
	defer stopReload()
	err := Run(ctx, r, os.Args[1:], os.Stdout, os.Stderr, reload)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", r, err)
	return 1
}

// notifyReload returns a channel that receives a value for each SIGHUP (one
// waits at most: a burst of signals is one reload), and the function that
// stops listening.
func notifyReload() (<-chan struct{}, func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	return reload, func() {
		signal.Stop(hup)
		close(done)
	}
}
