package fakeprovider

import (
	"net/http"
	"strconv"
)

// dialect is a provider's wire format; it decides the shape of error bodies.
type dialect int

const (
	openAI dialect = iota // also OpenRouter
	anthropic
	gemini
)

type obj = map[string]any

// writeError answers status with an error body in d's shape.
func (d dialect) writeError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	if !bodyAllowed(status) {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, d.errorBody(status, msg))
}

func (d dialect) errorBody(status int, msg string) obj {
	switch d {
	case anthropic:
		return obj{"type": "error", "error": obj{"type": anthropicErrorType(status), "message": msg}}
	case gemini:
		return obj{"error": obj{"code": status, "message": msg, "status": geminiStatus(status)}}
	default:
		return obj{"error": obj{"message": msg, "type": openAIErrorType(status), "param": nil, "code": openAICode(status)}}
	}
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified && status >= 200
}

func openAIErrorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}

func openAICode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "invalid_api_key"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	default:
		return "fake_status_" + strconv.Itoa(status)
	}
}

// anthropicErrorType follows https://docs.anthropic.com/en/api/errors.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// geminiStatus maps HTTP statuses to the google.rpc.Code names Gemini reports.
func geminiStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ALREADY_EXISTS"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	if status >= 400 {
		return "FAILED_PRECONDITION"
	}
	return "UNKNOWN"
}

// refuseRegion answers with the real providers' region refusals, the bodies
// their APIs send to callers from unsupported countries.
func (d dialect) refuseRegion(w http.ResponseWriter) {
	switch d {
	case anthropic:
		// Anthropic's refusal lacks the API's {"type":"error"} envelope.
		writeJSON(w, http.StatusForbidden, obj{"error": obj{"type": "forbidden", "message": "Request not allowed"}})
	case gemini:
		writeJSON(w, http.StatusBadRequest, obj{"error": obj{"code": 400, "message": "User location is not supported for the API use.", "status": "FAILED_PRECONDITION"}})
	default:
		writeJSON(w, http.StatusForbidden, obj{"error": obj{"code": "unsupported_country_region_territory",
			"message": "Country, region, or territory not supported", "param": nil, "type": "request_forbidden"}})
	}
}
