package e2e

import (
	"os/exec"
	"testing"
)

// TestPrometheusFiles checks deploy/prometheus with promtool: the scrape
// config, the alert rules, and the rules' unit tests (alerts_test.yml).
// That every llmesh_* name they use exists is TestMetricsAfterTraffic's.
func TestPrometheusFiles(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus); the metric names are still checked by TestMetricsAfterTraffic")
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../deploy/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
