package fakeprovider

import (
	"net/http"
	"testing"
	"time"
)

func TestParseControl(t *testing.T) {
	def := control{chunks: DefaultChunks, failAfter: -1}
	tests := []struct {
		name    string
		header  map[string]string
		want    control
		wantErr bool
	}{
		{"defaults", nil, def, false},
		{"chunks", map[string]string{HeaderChunks: "7"}, control{chunks: 7, failAfter: -1}, false},
		{"zero chunks", map[string]string{HeaderChunks: "0"}, control{chunks: 0, failAfter: -1}, false},
		{"delays", map[string]string{HeaderDelay: "50ms", HeaderHeaderDelay: "2s"},
			control{chunks: DefaultChunks, failAfter: -1, delay: 50 * time.Millisecond, headerDelay: 2 * time.Second}, false},
		{"status", map[string]string{HeaderStatus: "429"}, control{chunks: DefaultChunks, failAfter: -1, status: 429}, false},
		{"fail after", map[string]string{HeaderFailAfter: "0"}, control{chunks: DefaultChunks, failAfter: 0}, false},
		{"spaces", map[string]string{HeaderChunks: " 2 "}, control{chunks: 2, failAfter: -1}, false},
		{"negative chunks", map[string]string{HeaderChunks: "-1"}, def, true},
		{"huge chunks", map[string]string{HeaderChunks: "100000000"}, def, true},
		{"bad delay", map[string]string{HeaderDelay: "50"}, def, true},
		{"negative delay", map[string]string{HeaderHeaderDelay: "-1s"}, def, true},
		{"informational status", map[string]string{HeaderStatus: "100"}, def, true},
		{"status out of range", map[string]string{HeaderStatus: "600"}, def, true},
		{"bad fail after", map[string]string{HeaderFailAfter: "x"}, def, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, err := parseControl(h)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, ""},
		{1, "chunk 0 "},
		{3, "chunk 0 chunk 1 chunk 2 "},
	}
	for _, tt := range tests {
		if got := Text(tt.n); got != tt.want {
			t.Errorf("Text(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
