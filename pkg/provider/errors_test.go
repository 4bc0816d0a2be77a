package provider

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

func TestErrorShapes(t *testing.T) {
	e := &Error{Status: 503, Code: "no_egress", Message: "no live egress for hint wnam"}
	for _, tc := range []struct {
		style Style
		want  string
	}{
		{StyleOpenAI, `{"error":{"message":"no live egress for hint wnam","type":"api_error","code":"no_egress"}}`},
		{StyleAnthropic, `{"type":"error","error":{"type":"overloaded_error","message":"no live egress for hint wnam"}}`},
		{StyleGemini, `{"error":{"code":503,"message":"no live egress for hint wnam","status":"UNAVAILABLE"}}`},
	} {
		rec := httptest.NewRecorder()
		e.Write(rec, tc.style)
		if rec.Code != 503 || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("X-Mesh-Error") != "no_egress" {
			t.Errorf("%s: status %d headers %v", tc.style, rec.Code, rec.Header())
		}
		var got, want any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal([]byte(tc.want), &want)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("%s: body %s, want %s", tc.style, gb, wb)
		}
	}
}

// TestGeminiStatusNames: each status the mesh answers with maps to the
// google.rpc.Code Google's APIs pair with it.
func TestGeminiStatusNames(t *testing.T) {
	for status, want := range map[int]string{
		400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
		405: "UNIMPLEMENTED", 408: "DEADLINE_EXCEEDED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
		431: "INVALID_ARGUMENT", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 500: "INTERNAL",
	} {
		if got := geminiStatus(status); got != want {
			t.Errorf("geminiStatus(%d) = %s, want %s", status, got, want)
		}
	}
}
