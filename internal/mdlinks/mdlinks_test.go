package mdlinks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSlug(t *testing.T) {
	for title, want := range map[string]string{
		"Quick start": "quick-start",
		"Threat model: what llmesh protects and what it does not": "threat-model-what-llmesh-protects-and-what-it-does-not",
		"`/members`":                       "members",
		"`${VAR}` expansion":               "var-expansion",
		"Across oceans (make bench-wan)":   "across-oceans-make-bench-wan",
		"Failover that never double-bills": "failover-that-never-double-bills",
	} {
		if got := Slug(title); got != want {
			t.Errorf("Slug(%q) = %q, want %q", title, got, want)
		}
	}
}

func TestLinksSkipCode(t *testing.T) {
	text := "see [a](#x) and `[b](#y)`\n```\n[c](#z)\n```\n[d](docs/e.md#f)\n"
	got := strings.Join(Links(text), " ")
	if got != "#x docs/e.md#f" {
		t.Errorf("Links = %q", got)
	}
}

func TestRepeatedHeadings(t *testing.T) {
	a := Anchors("## Tests\n### Tests\n")
	if !a["tests"] || !a["tests-1"] {
		t.Errorf("Anchors = %v", a)
	}
}

// TestRepositoryLinks follows every relative link of every committed
// Markdown file: the file must exist, and an anchor must name a heading of
// the file it points into.
func TestRepositoryLinks(t *testing.T) {
	root := "../.."
	out, err := exec.Command("git", "-C", root, "ls-files", "*.md").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	anchors := map[string]map[string]bool{}
	anchorsOf := func(file string) map[string]bool {
		if a, ok := anchors[file]; ok {
			return a
		}
		data, _ := os.ReadFile(file)
		anchors[file] = Anchors(string(data))
		return anchors[file]
	}
	for _, md := range strings.Fields(string(out)) {
		data, err := os.ReadFile(filepath.Join(root, md))
		if err != nil {
			continue // deleted, not yet committed
		}
		for _, target := range Links(string(data)) {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			path := filepath.Join(root, md)
			if file != "" {
				path = filepath.Join(root, filepath.Dir(md), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link to %s: no such file", md, target)
					continue
				}
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchorsOf(path)[anchor] {
				t.Errorf("%s: link to %s: no heading with that anchor", md, target)
			}
		}
	}
}
