package provider

import (
	"net/http"
	"testing"
)

func TestClientKey(t *testing.T) {
	tests := []struct {
		style  Style
		header map[string]string
		query  string
		want   string
	}{
		{StyleOpenAI, map[string]string{"Authorization": "Bearer ak-1"}, "", "ak-1"},
		{StyleOpenAI, map[string]string{"Authorization": "bearer  ak-1 "}, "", "ak-1"},
		{StyleOpenAI, map[string]string{"X-Api-Key": "ak-1"}, "", ""},
		{StyleOpenAI, map[string]string{"Authorization": "Basic abc"}, "", ""},
		{StyleAnthropic, map[string]string{"X-Api-Key": "ak-2"}, "", "ak-2"},
		{StyleAnthropic, map[string]string{"Authorization": "Bearer ak-3"}, "", "ak-3"},
		{StyleGemini, map[string]string{"X-Goog-Api-Key": "ak-4"}, "", "ak-4"},
		{StyleGemini, nil, "alt=sse&key=ak%2D5", "ak-5"},
		{StyleGemini, map[string]string{"Authorization": "Bearer ak-6"}, "", ""},
	}
	for _, tc := range tests {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		got, ok := ClientKey(tc.style, h, tc.query)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ClientKey(%s, %v, %q) = %q, %v; want %q", tc.style, tc.header, tc.query, got, ok, tc.want)
		}
	}
}

func TestStripAndInject(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer a"}, "X-Api-Key": {"b"}, "X-Goog-Api-Key": {"c"}, "Accept": {"x"},
		// Other spellings a server may fold into the same slots.
		"X_Api_Key": {"d"}, "x-goog-api-key": {"e"}, "AUTHORIZATION": {"f"}, "X-Goog_Api-Key": {"g"}}
	q := StripCredentials(h, "alt=sse&key=secret&%6Bey=also&keyx=1&b=%20")
	if q != "alt=sse&keyx=1&b=%20" {
		t.Errorf("query %q", q)
	}
	if len(h) != 1 || h.Get("Accept") != "x" {
		t.Errorf("header %v", h)
	}
	for style, slot := range map[Style]string{StyleOpenAI: "Authorization", StyleAnthropic: "X-Api-Key", StyleGemini: "X-Goog-Api-Key"} {
		h := http.Header{}
		InjectKey(style, h, "real")
		if k, ok := ClientKey(style, h, ""); !ok || k != "real" || h.Get(slot) == "" {
			t.Errorf("%s: injected %v", style, h)
		}
	}
}
