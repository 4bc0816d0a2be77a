package fakeprovider

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

const geminiBody = `{"contents":[{"role":"user","parts":[{"text":"hello"}]}]}`

// geminiResponse is the part of GenerateContentResponse the tests read.
type geminiResponse struct {
	Candidates []struct {
		Content struct {
			Parts []struct {
				Text string `json:"text"`
			} `json:"parts"`
			Role string `json:"role"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
		TotalTokenCount      int `json:"totalTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
}

func (r geminiResponse) text() string {
	var b strings.Builder
	for _, c := range r.Candidates {
		for _, p := range c.Content.Parts {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

func TestGeminiGenerate(t *testing.T) {
	srv := start(t)
	for _, prefix := range []string{"/v1beta/models/", "/v1/models/"} {
		res := do(t, http.MethodPost, srv.URL+prefix+"gemini-fake:generateContent", geminiBody,
			map[string]string{"x-goog-api-key": "g-key", "Content-Type": "application/json"})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", prefix, res.StatusCode)
		}
		var r geminiResponse
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.text() != Text(DefaultChunks) || r.ModelVersion != "gemini-fake" {
			t.Errorf("%s: text %q, model %q", prefix, r.text(), r.ModelVersion)
		}
		if r.Candidates[0].FinishReason != "STOP" || r.Candidates[0].Content.Role != "model" || r.UsageMetadata.TotalTokenCount == 0 {
			t.Errorf("%s: response %+v", prefix, r)
		}
	}
}

func TestGeminiStreamSSE(t *testing.T) {
	srv := start(t)
	// The key in the query, as some clients send it.
	res := do(t, http.MethodPost, srv.URL+"/v1beta/models/gemini-fake:streamGenerateContent?alt=sse&key=g-key", geminiBody,
		map[string]string{HeaderChunks: "4"})
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var got []geminiResponse
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var r geminiResponse
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		got = append(got, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	checkGeminiChunks(t, got, 4)
}

func TestGeminiStreamArray(t *testing.T) {
	srv := start(t)
	res := do(t, http.MethodPost, srv.URL+"/v1beta/models/gemini-fake:streamGenerateContent", geminiBody,
		map[string]string{"x-goog-api-key": "g-key", HeaderChunks: "3"})
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var got []geminiResponse
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	checkGeminiChunks(t, got, 3)
}

func checkGeminiChunks(t *testing.T, got []geminiResponse, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d chunks, want %d", len(got), n)
	}
	var all strings.Builder
	for i, r := range got {
		if r.text() != Chunk(i) {
			t.Errorf("chunk %d = %q, want %q", i, r.text(), Chunk(i))
		}
		all.WriteString(r.text())
		last := i == n-1
		if (r.Candidates[0].FinishReason == "STOP") != last {
			t.Errorf("chunk %d finishReason %q", i, r.Candidates[0].FinishReason)
		}
	}
	if all.String() != Text(n) {
		t.Errorf("text %q, want %q", all.String(), Text(n))
	}
}

func TestGeminiMissingKey(t *testing.T) {
	srv := start(t)
	for _, path := range []string{
		"/v1beta/models/gemini-fake:generateContent",
		"/v1beta/models/gemini-fake:streamGenerateContent?alt=sse",
	} {
		res := do(t, http.MethodPost, srv.URL+path, geminiBody, nil)
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: status %d, want 403", path, res.StatusCode)
		}
		v := decodeBody(t, res)
		if get(v, "error", "code") != float64(403) || get(v, "error", "status") != "PERMISSION_DENIED" || get(v, "error", "message") == "" {
			t.Errorf("%s: body %v", path, v)
		}
	}
}

func TestGeminiModels(t *testing.T) {
	srv := start(t)
	res := do(t, http.MethodGet, srv.URL+"/v1beta/models?key=k", "", nil)
	v := decodeBody(t, res)
	if get(v, "models", 0, "name") != "models/"+models[0] {
		t.Errorf("body %v", v)
	}
}
