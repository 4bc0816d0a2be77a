// Package bench is the harness of make bench: it runs the fake provider and
// a load generator on one CPU, each proxy under test on another, and prints
// one table comparing llmesh with no proxy at all and with the Go floor (a
// minimal standard-library reverse proxy, package floor), so a number is
// only ever read beside its reference from the same run.
//
// The pieces are plain: latency samples and their quantiles (stats.go), CPU
// time, peak RSS and CPU affinity read from /proc (proc.go), pinning
// (affinity.go), the closed-loop, open-loop and streaming load (load.go),
// the idle streams and the RSS each costs (idle.go), the processes under
// test (setup.go), the run itself (run.go) and the table (table.go).
package bench
