package provider

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is an error produced by the mesh itself (not by a provider), written
// in the JSON shape of the provider the request was for.
type Error struct {
	Status  int    // HTTP status
	Code    string // stable machine-readable code, e.g. "no_egress"
	Message string // human-readable, safe to show: never holds secrets
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Write sends e in the shape the SDKs of style parse. The X-Mesh-Error header
// carries the code so operators can tell mesh errors from provider errors.
func (e *Error) Write(w http.ResponseWriter, style Style) {
	var body any
	switch style {
	case StyleAnthropic:
		body = anthropicError{Type: "error", Error: anthropicDetail{Type: anthropicType(e.Status), Message: e.Message}}
	case StyleGemini:
		body = geminiError{Error: geminiDetail{Code: e.Status, Message: e.Message, Status: geminiStatus(e.Status)}}
	default:
		body = openAIError{Error: openAIDetail{Message: e.Message, Type: openAIType(e.Status), Code: e.Code}}
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("X-Mesh-Error", e.Code)
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(e.Status)
	w.Write(append(b, '\n'))
}

type openAIError struct {
	Error openAIDetail `json:"error"`
}

type openAIDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
}

type anthropicError struct {
	Type  string          `json:"type"`
	Error anthropicDetail `json:"error"`
}

type anthropicDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type geminiError struct {
	Error geminiDetail `json:"error"`
}

type geminiDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func openAIType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status < 500:
		return "invalid_request_error"
	default:
		return "api_error"
	}
}

// anthropicType follows https://docs.anthropic.com/en/api/errors.
func anthropicType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable, 529:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	if status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

// geminiStatus is the google.rpc.Code name Google APIs pair with status.
func geminiStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if status < 500 {
		return "FAILED_PRECONDITION"
	}
	return "INTERNAL"
}
