package e2e

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoInstall installs both commands the way the README tells users to,
// `go install github.com/llmesh/llmesh/cmd/ingress@VERSION`, from a module
// proxy on disk that serves this checkout as a release. It fails when
// go.mod gains a directive that `go install pkg@version` refuses (replace,
// exclude), when a file the build needs is not committed, or when a
// command cannot report its version.
func TestGoInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both commands from a module zip")
	}
	t.Parallel()
	files, err := exec.Command("git", "-C", "..", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (git ls-files: %v): nothing to release", err)
	}
	const mod, version = "github.com/llmesh/llmesh", "v0.0.1"
	tmp := t.TempDir()
	proxy := filepath.Join(tmp, "proxy", mod, "@v")
	if err := os.MkdirAll(proxy, 0o755); err != nil {
		t.Fatal(err)
	}
	zipped := moduleZip(t, strings.Split(strings.TrimRight(string(files), "\x00"), "\x00"), mod+"@"+version)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": fmt.Appendf(nil, `{"Version":%q,"Time":"2026-12-01T00:00:00Z"}`, version),
		version + ".mod":  gomod,
		version + ".zip":  zipped,
	} {
		if err := os.WriteFile(filepath.Join(proxy, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	upstream, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "bin")
	for _, cmd := range []string{"ingress", "egress"} {
		install := exec.Command("go", "install", mod+"/cmd/"+cmd+"@"+version)
		install.Dir = tmp // outside any module, as a user's shell
		install.Env = append(os.Environ(),
			"GOPROXY=file://"+filepath.ToSlash(filepath.Join(tmp, "proxy"))+","+strings.TrimSpace(string(upstream)),
			"GONOSUMDB="+mod, // this release exists only here; its dependencies are checked as usual
			"GOBIN="+bin, "GOFLAGS=", "GOWORK=off")
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("go install %s@%s: %v\n%s", cmd, version, err, out)
		}
		out, err := exec.Command(filepath.Join(bin, cmd), "-version").CombinedOutput()
		if want := cmd + " " + version; err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%s -version = %q, %v; want %q", cmd, out, err, want)
		}
	}
}

// moduleZip lays out the committed files as a module zip (golang.org/x/mod/zip's
// format): every file under prefix/, without the directories of nested modules.
func moduleZip(t *testing.T, files []string, prefix string) []byte {
	t.Helper()
	nested := map[string]bool{}
	for _, f := range files {
		if path.Base(f) == "go.mod" && f != "go.mod" {
			nested[path.Dir(f)+"/"] = true
		}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
files:
	for _, f := range files {
		for dir := range nested {
			if strings.HasPrefix(f, dir) {
				continue files
			}
		}
		data, err := os.ReadFile(filepath.Join("..", f))
		if os.IsNotExist(err) {
			continue // deleted in the working tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(prefix + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
