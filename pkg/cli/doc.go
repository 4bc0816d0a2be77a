// Package cli is the command line of the ingress and egress binaries: flag
// parsing, logging set-up and subcommands, behind one testable Run.
package cli
