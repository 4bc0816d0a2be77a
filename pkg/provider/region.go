package provider

import (
	"bytes"
	"net/http"
)

// RegionBlocked reports whether a provider's error response refuses the
// caller's region (as opposed to the request): the one refusal that another
// egress region can cure. body is the start of the response body.
//
//	OpenAI:    403 unsupported_country_region_territory
//	Anthropic: 403 "Request not allowed" (type forbidden)
//	Gemini:    400 FAILED_PRECONDITION "User location is not supported"
//	others:    403 "... not available in your region"
func RegionBlocked(style Style, status int, body []byte) bool {
	switch {
	case status == http.StatusForbidden && bytes.Contains(body, []byte("unsupported_country_region_territory")):
		return true
	case status == http.StatusForbidden && style == StyleAnthropic &&
		(bytes.Contains(body, []byte("Request not allowed")) || bytes.Contains(body, []byte(`"forbidden"`))):
		return true
	case status == http.StatusBadRequest && style == StyleGemini &&
		bytes.Contains(body, []byte("FAILED_PRECONDITION")) && bytes.Contains(body, []byte("User location is not supported")):
		return true
	case status == http.StatusForbidden && bytes.Contains(bytes.ToLower(body), []byte("not available in your region")):
		return true
	}
	return false
}
