package fakeprovider

import (
	"net/http"
	"strings"
)

type messagesRequest struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
}

// serveMessages answers Anthropic's Messages API. A stream is the standard
// sequence: message_start, content_block_start, ping, one
// content_block_delta (text_delta) per chunk, content_block_stop,
// message_delta, message_stop.
func serveMessages(x *exchange) {
	if !x.allow(anthropic, http.MethodPost) || !anthropicHeaders(x) {
		return
	}
	var req messagesRequest
	if !x.decode(anthropic, &req) {
		return
	}
	c, ok := x.control(anthropic)
	if !ok || !x.prelude(anthropic, c) {
		return
	}
	id := x.p.nextID("msg_fake_")
	message := func(content []obj, stopReason any, output int) obj {
		return obj{
			"id":            id,
			"type":          "message",
			"role":          "assistant",
			"model":         req.Model,
			"content":       content,
			"stop_reason":   stopReason,
			"stop_sequence": nil,
			"usage":         obj{"input_tokens": x.inputTokens(), "output_tokens": output},
		}
	}

	if !req.Stream {
		if !x.pace(c) {
			return
		}
		content := []obj{{"type": "text", "text": Text(c.chunks)}}
		x.finish(c, message(content, "end_turn", outputTokens(c.chunks)))
		return
	}

	if !x.startSSE() ||
		!x.event("message_start", obj{"type": "message_start", "message": message([]obj{}, nil, 1)}) ||
		!x.event("content_block_start", obj{"type": "content_block_start", "index": 0, "content_block": obj{"type": "text", "text": ""}}) ||
		!x.event("ping", obj{"type": "ping"}) {
		return
	}
	for i := range c.chunks {
		if !x.beforeChunk(c, i) {
			return
		}
		delta := obj{"type": "content_block_delta", "index": 0, "delta": obj{"type": "text_delta", "text": Chunk(i)}}
		if !x.event("content_block_delta", delta) {
			return
		}
	}
	x.beforeEnd(c)
	_ = x.event("content_block_stop", obj{"type": "content_block_stop", "index": 0}) &&
		x.event("message_delta", obj{
			"type":  "message_delta",
			"delta": obj{"stop_reason": "end_turn", "stop_sequence": nil},
			"usage": obj{"output_tokens": outputTokens(c.chunks)},
		}) &&
		x.event("message_stop", obj{"type": "message_stop"})
}

// anthropicHeaders checks what the real API insists on: anthropic-version
// and a key, as x-api-key or Authorization: Bearer (which the JS SDK sends).
func anthropicHeaders(x *exchange) bool {
	h := x.r.Header
	if h.Get("anthropic-version") == "" {
		anthropic.writeError(x.w, http.StatusBadRequest, "anthropic-version: header is required")
		return false
	}
	scheme, token, _ := strings.Cut(h.Get("Authorization"), " ")
	bearer := strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(token) != ""
	if h.Get("x-api-key") == "" && !bearer {
		anthropic.writeError(x.w, http.StatusUnauthorized, "x-api-key header is required")
		return false
	}
	return true
}
