// Command egress runs an llmesh egress node. See README.md.
package main

import (
	"os"

	"github.com/llmesh/llmesh/pkg/cli"
	"github.com/llmesh/llmesh/pkg/role"
)

func main() { os.Exit(cli.Main(role.Egress)) }
