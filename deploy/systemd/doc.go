// Package systemd holds the tests of the systemd units beside it: the
// hardening directives, a stop timeout that covers the example configs'
// drain_timeout, and the exposure level `systemd-analyze security` gives
// them where it is installed.
package systemd
