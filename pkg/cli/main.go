package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/llmesh/llmesh/pkg/config"
)

// Main runs role with the process's arguments and signals and returns the
// exit code: SIGINT or SIGTERM drains the node and exits 0.
func Main(role config.Role) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, role, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
	return 1
}
