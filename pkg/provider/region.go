package provider

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
)

// maxRefusalBytes bounds the body a refusal is looked for in. The real
// refusals are under 200 bytes; a longer body is some other error.
const maxRefusalBytes = 4 << 10

// The refusals the providers' APIs send to callers from unsupported
// countries, recognised by status, JSON shape and code together, never by a
// substring: error bodies may quote the client's input (a moderation error
// quoting the prompt, a custom provider echoing a field), and a refusal
// reroutes the provider for every client of the node.
//
//	OpenAI:     403 {"error":{"code":"unsupported_country_region_territory","message":"...","param":null,"type":"request_forbidden"}}
//	Anthropic:  403 {"error":{"type":"forbidden","message":"Request not allowed"}} (also inside {"type":"error",...})
//	Gemini:     400 {"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}
//	            (the OpenAI-compatible endpoint wraps it in a one-element array)
//	OpenRouter: 403 {"error":{"code":403,"message":"This model is not available in your region."}}
const (
	openAIRegionCode     = "unsupported_country_region_territory"
	openAIRegionType     = "request_forbidden"
	anthropicRegionType  = "forbidden"
	anthropicRegionMsg   = "Request not allowed"
	geminiRegionStatus   = "FAILED_PRECONDITION"
	geminiRegionMsg      = "User location is not supported for the API use."
	openRouterRegionMsg  = "This model is not available in your region."
	openRouterRegionHost = "openrouter.ai"
)

// RegionBlocked reports whether an error response of a provider of this style
// is the style's own API refusing the caller's region (as opposed to the
// request): the one refusal that another egress region can cure. body is the
// start of the response body. It knows the official APIs' refusals only; a
// custom provider of the openai style counts only with OpenAI's exact
// refusal. Provider.RefusesRegion also knows OpenRouter's.
func RegionBlocked(style Style, status int, body []byte) bool {
	if len(body) > maxRefusalBytes {
		return false
	}
	switch style {
	case StyleAnthropic:
		return status == http.StatusForbidden && anthropicRefusal(body)
	case StyleGemini:
		return status == http.StatusBadRequest && geminiRefusal(body)
	default:
		return status == http.StatusForbidden && openAIRefusal(body)
	}
}

// RefusesRegion is RegionBlocked for p: OpenRouter (a base URL on
// openrouter.ai) answers with its own refusal, every other provider with its
// style's.
func (p *Provider) RefusesRegion(status int, body []byte) bool {
	if strings.EqualFold(p.Base.Hostname(), openRouterRegionHost) {
		return len(body) <= maxRefusalBytes && status == http.StatusForbidden && openRouterRefusal(body)
	}
	return RegionBlocked(p.Style, status, body)
}

func openAIRefusal(body []byte) bool {
	top, ok := fields(body, "error")
	if !ok {
		return false
	}
	e, ok := fields(top["error"], "code", "message", "param", "type")
	return ok && stringIs(e["code"], openAIRegionCode) && stringIs(e["type"], openAIRegionType) &&
		isString(e["message"]) && nullOrAbsent(e["param"])
}

func anthropicRefusal(body []byte) bool {
	top, ok := fields(body, "type", "error")
	if !ok || (top["type"] != nil && !stringIs(top["type"], "error")) {
		return false
	}
	e, ok := fields(top["error"], "type", "message")
	return ok && stringIs(e["type"], anthropicRegionType) && stringIs(e["message"], anthropicRegionMsg)
}

func geminiRefusal(body []byte) bool {
	var list []json.RawMessage
	if json.Unmarshal(body, &list) == nil {
		if len(list) != 1 {
			return false
		}
		body = list[0]
	}
	top, ok := fields(body, "error")
	if !ok {
		return false
	}
	e, ok := fields(top["error"], "code", "message", "status")
	return ok && numberIs(e["code"], http.StatusBadRequest) && stringIs(e["status"], geminiRegionStatus) &&
		stringIs(e["message"], geminiRegionMsg)
}

func openRouterRefusal(body []byte) bool {
	top, ok := fields(body, "error", "user_id")
	if !ok || (top["user_id"] != nil && !isString(top["user_id"])) {
		return false
	}
	e, ok := fields(top["error"], "code", "message")
	return ok && numberIs(e["code"], http.StatusForbidden) && stringIs(e["message"], openRouterRegionMsg)
}

// fields decodes data as exactly one JSON object whose keys are all among
// allowed, each at most once (a duplicate key could hide the real value
// behind an injected one), and returns its raw values by key.
func fields(data []byte, allowed ...string) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	m := make(map[string]json.RawMessage, len(allowed))
	for dec.More() {
		t, err := dec.Token()
		k, isKey := t.(string)
		if err != nil || !isKey || !slices.Contains(allowed, k) || m[k] != nil {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		m[k] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // something after the object
	}
	return m, true
}

func value(raw json.RawMessage) any {
	var v any
	if raw == nil || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return v
}

func stringIs(raw json.RawMessage, want string) bool {
	s, ok := value(raw).(string)
	return ok && s == want
}

func isString(raw json.RawMessage) bool {
	_, ok := value(raw).(string)
	return ok
}

func numberIs(raw json.RawMessage, want int) bool {
	n, ok := value(raw).(float64)
	return ok && n == float64(want)
}

func nullOrAbsent(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
