package version

import "testing"

func TestFromBuild(t *testing.T) {
	for _, c := range []struct{ module, want string }{
		{"v0.3.1", "v0.3.1"},
		{"v0.0.0-20261201120000-abcdef123456", "v0.0.0-20261201120000-abcdef123456"},
		{"(devel)", "dev"},
		{"", "dev"},
	} {
		if got := fromBuild(c.module, "dev"); got != c.want {
			t.Errorf("fromBuild(%q) = %q, want %q", c.module, got, c.want)
		}
	}
}
