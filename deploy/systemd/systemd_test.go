package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// units are the unit files and the example configs each may run.
var units = map[string]string{
	"llmesh-ingress.service": "../configs/ingress-*.yaml",
	"llmesh-egress.service":  "../configs/egress-*.yaml",
}

// maxExposure is the highest `systemd-analyze security` exposure level the
// units may have (0 is best, 10 worst; 1.6 when this was written).
const maxExposure = 2.0

// hardening lists directives each unit must set, with their value.
var hardening = map[string]string{
	"DynamicUser":             "yes",
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"AmbientCapabilities":     "",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"ProtectClock":            "yes",
	"ProtectHostname":         "yes",
	"ProtectProc":             "invisible",
	"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
	"RestrictNamespaces":      "yes",
	"RestrictRealtime":        "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
	"SystemCallFilter":        "@system-service",
	"UMask":                   "0077",
	"ConfigurationDirectory":  "llmesh",
	"KillSignal":              "SIGTERM",
	"ExecReload":              "/bin/kill -HUP $MAINPID",
}

// parse reads a unit file's [Service] section: key -> values in order.
func parse(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make(map[string][]string)
	section := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			out[k] = append(out[k], v)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnitHardening checks the hardening directives and that systemd
// waits for the drain of every example config before killing the node.
func TestUnitHardening(t *testing.T) {
	for unit, configs := range units {
		t.Run(unit, func(t *testing.T) {
			svc := parse(t, unit)
			for k, want := range hardening {
				if got := svc[k]; len(got) == 0 || got[0] != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
			if !slices.Contains(svc["SystemCallFilter"], "~@privileged") {
				t.Errorf("SystemCallFilter: want ~@privileged too")
			}
			stop := timeoutStop(t, svc)
			paths, err := filepath.Glob(configs)
			if err != nil || len(paths) == 0 {
				t.Fatalf("no config matches %s (%v)", configs, err)
			}
			for _, p := range paths {
				if drain := drainTimeout(t, p); stop < drain+10*time.Second {
					t.Errorf("TimeoutStopSec %v: want at least %s's drain_timeout %v + 10s", stop, p, drain)
				}
			}
		})
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnitExposure runs `systemd-analyze security --offline=yes` on each
// unit, where systemd-analyze is installed, and bounds the exposure level.
func TestUnitExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd); TestUnitHardening checks the directives")
	}
	for unit := range units {
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
		m := exposureLine.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
		}
		level, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: exposure level %.1f", unit, level)
		if level > maxExposure {
			t.Errorf("%s: exposure level %.1f > %.1f:\n%s", unit, level, maxExposure, out)
		}
	}
}

func timeoutStop(t *testing.T, svc map[string][]string) time.Duration {
	t.Helper()
	v := svc["TimeoutStopSec"]
	if len(v) != 1 {
		t.Fatalf("TimeoutStopSec=%q: want one value", v)
	}
	s := v[0]
	if _, err := strconv.Atoi(s); err == nil {
		s += "s" // a bare number is seconds
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", v[0], err)
	}
	return d
}

// drainTimeout reads drain_timeout from a config (30s when unset, the
// default).
func drainTimeout(t *testing.T, path string) time.Duration {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		DrainTimeout string `json:"drain_timeout"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if c.DrainTimeout == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(c.DrainTimeout)
	if err != nil {
		t.Fatalf("%s: drain_timeout: %v", path, err)
	}
	return d
}
