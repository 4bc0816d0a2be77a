package provider

import (
	"encoding/json"
	"strings"
	"testing"
)

// The real refusals, as the providers send them to callers from unsupported
// countries (bodies quoted in public bug reports).
const (
	openAIRefusalBody     = `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`
	anthropicRefusalBody  = `{"error":{"type":"forbidden","message":"Request not allowed"}}`
	geminiRefusalBody     = "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"User location is not supported for the API use.\",\n    \"status\": \"FAILED_PRECONDITION\"\n  }\n}\n"
	openRouterRefusalBody = `{"error":{"message":"This model is not available in your region.","code":403}}`
)

func TestRegionBlocked(t *testing.T) {
	tests := []struct {
		name   string
		style  Style
		status int
		body   string
		want   bool
	}{
		// The real refusals.
		{"openai", StyleOpenAI, 403, openAIRefusalBody, true},
		{"openai without param", StyleOpenAI, 403, `{"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","code":"unsupported_country_region_territory"}}`, true},
		{"anthropic", StyleAnthropic, 403, anthropicRefusalBody, true},
		{"anthropic in the API envelope", StyleAnthropic, 403, `{"type":"error","error":{"type":"forbidden","message":"Request not allowed"}}`, true},
		{"gemini", StyleGemini, 400, geminiRefusalBody, true},
		{"gemini compact", StyleGemini, 400, `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`, true},
		{"gemini openai-compatible endpoint", StyleGemini, 400, `[{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}]`, true},

		// Right body, wrong status or style.
		{"openai 400", StyleOpenAI, 400, openAIRefusalBody, false},
		{"gemini 403", StyleGemini, 403, geminiRefusalBody, false},
		{"anthropic as openai", StyleOpenAI, 403, anthropicRefusalBody, false},
		{"openai as anthropic", StyleAnthropic, 403, openAIRefusalBody, false},
		{"openrouter's refusal from a custom openai-style provider", StyleOpenAI, 403, openRouterRefusalBody, false},

		// The marker only inside another error's message: a moderation
		// error or a provider quoting the client's input.
		{"openai code in message", StyleOpenAI, 403, `{"error":{"code":"content_policy_violation","message":"flagged: unsupported_country_region_territory request_forbidden","param":null,"type":"invalid_request_error"}}`, false},
		{"openai whole refusal quoted in message", StyleOpenAI, 403, `{"error":{"code":"moderation","message":` + quote(openAIRefusalBody) + `,"param":null,"type":"invalid_request_error"}}`, false},
		{"anthropic message quoted", StyleAnthropic, 403, `{"type":"error","error":{"type":"permission_error","message":"Request not allowed"}}`, false},
		{"anthropic forbidden with another message", StyleAnthropic, 403, `{"type":"error","error":{"type":"forbidden","message":"Request not allowed: you said 'hi'"}}`, false},
		{"gemini message quoted", StyleGemini, 400, `{"error":{"code":400,"message":"Invalid value: User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`, false},
		{"gemini other status", StyleGemini, 400, `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"INVALID_ARGUMENT"}}`, false},
		{"gemini code as string", StyleGemini, 400, `{"error":{"code":"400","message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`, false},
		{"old substring rule", StyleOpenAI, 403, `{"error":{"message":"This model is not available in your region."}}`, false},

		// The marker inside some other field: an echoed prompt or param.
		{"openai echoed field", StyleOpenAI, 403, `{"error":{"code":"unsupported_country_region_territory","message":"x","param":null,"type":"request_forbidden","prompt":"hi"}}`, false},
		{"openai refusal inside an echo", StyleOpenAI, 403, `{"echo":` + openAIRefusalBody + `}`, false},
		{"openai param echoed", StyleOpenAI, 403, `{"error":{"code":"unsupported_country_region_territory","message":"x","param":"messages","type":"request_forbidden"}}`, false},
		{"anthropic echoed top-level field", StyleAnthropic, 403, `{"error":{"type":"forbidden","message":"Request not allowed"},"request":"hi"}`, false},
		{"anthropic other envelope type", StyleAnthropic, 403, `{"type":"message","error":{"type":"forbidden","message":"Request not allowed"}}`, false},
		{"gemini with details", StyleGemini, 400, `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION","details":[{"prompt":"hi"}]}}`, false},
		{"gemini two-element array", StyleGemini, 400, `[` + geminiRefusalBody + `,{}]`, false},

		// Duplicate keys: an injected value must not hide the real one.
		{"openai duplicate code", StyleOpenAI, 403, `{"error":{"code":"model_not_found","message":"x","code":"unsupported_country_region_territory","type":"request_forbidden","param":null}}`, false},
		{"openai duplicate error", StyleOpenAI, 403, `{"error":{"code":"x"},"error":{"code":"unsupported_country_region_territory","message":"m","type":"request_forbidden"}}`, false},

		// Not valid JSON, or more than one value.
		{"openai bare marker", StyleOpenAI, 403, `unsupported_country_region_territory`, false},
		{"openai text around", StyleOpenAI, 403, `error: ` + openAIRefusalBody, false},
		{"openai trailing value", StyleOpenAI, 403, openAIRefusalBody + `{}`, false},
		{"openai truncated", StyleOpenAI, 403, openAIRefusalBody[:len(openAIRefusalBody)-1], false},
		{"openai too long", StyleOpenAI, 403, openAIRefusalBody + strings.Repeat(" ", maxRefusalBytes), false},
		{"gemini text", StyleGemini, 400, `400 FAILED_PRECONDITION User location is not supported for the API use.`, false},
		{"empty", StyleOpenAI, 403, ``, false},

		// Ordinary errors.
		{"openai access", StyleOpenAI, 403, `{"error":{"message":"You do not have access to this model","type":"invalid_request_error"}}`, false},
		{"gemini invalid", StyleGemini, 400, `{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}`, false},
		{"anthropic auth", StyleAnthropic, 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, false},
	}
	for _, tc := range tests {
		if got := RegionBlocked(tc.style, tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: RegionBlocked(%s, %d, %s) = %v", tc.name, tc.style, tc.status, tc.body, got)
		}
	}
}

func TestProviderRefusesRegion(t *testing.T) {
	openRouter := mustNew(t, "openrouter", "https://openrouter.ai/api", StyleOpenAI)
	custom := mustNew(t, "mine", "https://llm.example.com/v1", StyleOpenAI)
	openAI := mustNew(t, "openai", "https://api.openai.com", StyleOpenAI)
	tests := []struct {
		name   string
		p      *Provider
		status int
		body   string
		want   bool
	}{
		{"openrouter", openRouter, 403, openRouterRefusalBody, true},
		{"openrouter with user_id", openRouter, 403, `{"error":{"code":403,"message":"This model is not available in your region."},"user_id":"user_1"}`, true},
		{"openai", openAI, 403, openAIRefusalBody, true},
		{"custom openai-style with openai's refusal", custom, 403, openAIRefusalBody, true},
		{"custom openai-style with openrouter's refusal", custom, 403, openRouterRefusalBody, false},

		// OpenRouter relaying its upstream's refusal: the upstream refused
		// OpenRouter's region, not ours; another egress cannot cure it.
		{"openrouter relaying openai", openRouter, 403, `{"error":{"message":"Provider returned error","code":403,"metadata":{"raw":` + quote(openAIRefusalBody) + `,"provider_name":"OpenAI"}}}`, false},
		{"openrouter bare openai refusal", openRouter, 403, openAIRefusalBody, false},
		{"openrouter moderation", openRouter, 403, `{"error":{"code":403,"message":"This model is not available in your region.","metadata":{"flagged_input":"hi"}}}`, false},
		{"openrouter message quoted", openRouter, 403, `{"error":{"code":403,"message":"Your input was flagged: This model is not available in your region."}}`, false},
		{"openrouter 400", openRouter, 400, openRouterRefusalBody, false},
		{"openrouter code 400", openRouter, 403, `{"error":{"code":400,"message":"This model is not available in your region."}}`, false},
	}
	for _, tc := range tests {
		if got := tc.p.RefusesRegion(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: %s.RefusesRegion(%d, %s) = %v", tc.name, tc.p.Name, tc.status, tc.body, got)
		}
	}
}

// FuzzRegionBlocked: no input panics; whatever a client can get quoted into
// an error (a message, another field) never counts; and a body counts only
// if its top-level JSON has the exact shape of a refusal.
func FuzzRegionBlocked(f *testing.F) {
	for _, b := range []string{openAIRefusalBody, anthropicRefusalBody, geminiRefusalBody, openRouterRefusalBody, `[` + geminiRefusalBody + `]`, `{"error":{}}`, `[]`, `{"error":{"code":"x","code":"y"}}`} {
		f.Add([]byte(b), "unsupported_country_region_territory")
	}
	openRouter, err := New("openrouter", "https://openrouter.ai/api", StyleOpenAI, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, echo string) {
		for _, style := range []Style{StyleOpenAI, StyleAnthropic, StyleGemini} {
			for _, status := range []int{400, 403} {
				if RegionBlocked(style, status, body) {
					checkRefusalShape(t, string(style), status, body)
				}
				for _, quoted := range echoes(echo) {
					if RegionBlocked(style, status, quoted) {
						t.Fatalf("%s %d: an echo of %q counts as a refusal: %s", style, status, echo, quoted)
					}
				}
			}
		}
		if openRouter.RefusesRegion(403, body) {
			checkRefusalShape(t, "openrouter", 403, body)
		}
		for _, quoted := range echoes(echo) {
			if openRouter.RefusesRegion(403, quoted) {
				t.Fatalf("openrouter: an echo of %q counts as a refusal: %s", echo, quoted)
			}
		}
	})
}

// echoes are error bodies that quote s where providers put client input:
// in the message of another error, or in a field of its own. (A provider that
// answers with the client's bytes verbatim as its whole body is beyond any
// shape check; the README says so.)
func echoes(s string) [][]byte {
	q := quote(s)
	return [][]byte{
		[]byte(`{"error":{"code":"invalid_prompt","message":` + q + `,"param":null,"type":"invalid_request_error"}}`),
		[]byte(`{"error":{"code":"unsupported_country_region_territory","message":"m","param":null,"type":"request_forbidden","input":` + q + `}}`),
		[]byte(`{"type":"error","error":{"type":"permission_error","message":` + q + `}}`),
		[]byte(`{"error":{"type":"forbidden","message":"Request not allowed"},"prompt":` + q + `}`),
		[]byte(`{"error":{"code":400,"message":` + q + `,"status":"INVALID_ARGUMENT"}}`),
		[]byte(`{"error":{"code":403,"message":` + q + `,"metadata":{"flagged_input":` + q + `}}}`),
	}
}

// checkRefusalShape fails t unless body is one JSON value (an object, or for
// Gemini a one-element array of one) whose "error" object holds the refusal's
// code for who at status.
func checkRefusalShape(t *testing.T, who string, status int, body []byte) {
	t.Helper()
	if !json.Valid(body) || len(body) > maxRefusalBytes {
		t.Fatalf("%s %d: invalid or oversized body counts as a refusal: %q", who, status, body)
	}
	var top map[string]any
	if err := json.Unmarshal(body, &top); err != nil {
		var list []map[string]any
		if who != "gemini" || json.Unmarshal(body, &list) != nil || len(list) != 1 {
			t.Fatalf("%s %d: a body that is not an object counts as a refusal: %q", who, status, body)
		}
		top = list[0]
	}
	e, _ := top["error"].(map[string]any)
	var ok bool
	switch who {
	case "openai":
		ok = status == 403 && e["code"] == openAIRegionCode && e["type"] == openAIRegionType && len(top) == 1
	case "anthropic":
		ok = status == 403 && e["type"] == anthropicRegionType && e["message"] == anthropicRegionMsg && len(e) == 2
	case "gemini":
		ok = status == 400 && e["code"] == float64(400) && e["status"] == geminiRegionStatus && e["message"] == geminiRegionMsg && len(e) == 3
	case "openrouter":
		ok = status == 403 && e["code"] == float64(403) && e["message"] == openRouterRegionMsg && len(e) == 2
	}
	if !ok {
		t.Fatalf("%s %d: counts as a refusal without the refusal's shape: %q", who, status, body)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func mustNew(t *testing.T, name, base string, style Style) *Provider {
	t.Helper()
	p, err := New(name, base, style, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
