package e2e

import (
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
)

// TestBinaryProviderHTTP2: a provider reached over HTTPS that speaks HTTP/2
// (as the public APIs do) is called over HTTP/2, with concurrent requests
// multiplexed on one connection, by a real ingress trusting its CA through
// SSL_CERT_FILE.
func TestBinaryProviderHTTP2(t *testing.T) {
	const concurrent = 4
	var (
		mu      sync.Mutex
		protos  []int
		remotes = map[string]bool{}
		arrived = make(chan struct{}, concurrent)
		release = make(chan struct{})
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos = append(protos, r.ProtoMajor)
		remotes[r.RemoteAddr] = true
		mu.Unlock()
		if r.Header.Get("X-Hold") != "" {
			arrived <- struct{}{}
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[]}`)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "provider-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := writeConfig(t, fmt.Sprintf(`
node: {name: bin-h2, loc: US}
http: {listen: "127.0.0.1:0"}
gossip: {bind: "127.0.0.1:0", profile: local}
providers:
  openai: {base_url: "%s"}
`, srv.URL))
	ingress := startProcess(t, "ingress", []string{"SSL_CERT_FILE=" + ca}, "-config", cfg)
	url := "http://" + ingress.field(t, `node started.* http=(\S+)`) + "/openai/v1/models"

	wait.For(t, 20*time.Second, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return nil
	})

	// Requests held open at the provider at once: HTTP/1.1 would need one
	// connection each.
	var wg sync.WaitGroup
	errs := make(chan error, concurrent)
	for range concurrent {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("X-Hold", "1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Errorf("status %d, %v", resp.StatusCode, err)
			}
		})
	}
	for range concurrent {
		select {
		case <-arrived:
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(20 * time.Second):
			t.Fatal("the held requests did not all reach the provider")
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range protos {
		if p != 2 {
			t.Fatalf("the provider saw HTTP/%d requests (%v), want HTTP/2 only", p, protos)
		}
	}
	if len(remotes) != 1 {
		t.Errorf("%d requests came over %d connections (%s), want one multiplexed connection",
			len(protos), len(remotes), strings.Join(slices.Collect(maps.Keys(remotes)), ", "))
	}
}
