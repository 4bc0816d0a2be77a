package fakeprovider

import (
	"encoding/json"
	"net/http"
)

// serveGemini answers generateContent and streamGenerateContent for model.
// A stream is SSE (data: lines) with ?alt=sse, otherwise a JSON array
// written one element at a time. Each element carries one chunk; the last
// one has finishReason STOP.
func serveGemini(x *exchange, model string, stream bool) {
	if !x.allow(gemini, http.MethodPost) || !geminiKey(x) {
		return
	}
	var req json.RawMessage
	if !x.decode(gemini, &req) {
		return
	}
	c, ok := x.control(gemini)
	if !ok || !x.prelude(gemini, c) {
		return
	}
	id := x.p.nextID("fake-response-")
	response := func(text string, last bool, output int) obj {
		candidate := obj{
			"content": obj{"parts": []obj{{"text": text}}, "role": "model"},
			"index":   0,
		}
		if last {
			candidate["finishReason"] = "STOP"
		}
		return obj{
			"candidates": []obj{candidate},
			"usageMetadata": obj{
				"promptTokenCount":     x.inputTokens(),
				"candidatesTokenCount": output,
				"totalTokenCount":      x.inputTokens() + output,
			},
			"modelVersion": model,
			"responseId":   id,
		}
	}

	if !stream {
		if !x.pace(c) {
			return
		}
		x.finish(c, response(Text(c.chunks), true, outputTokens(c.chunks)))
		return
	}

	sse := x.r.URL.Query().Get("alt") == "sse"
	var started bool
	if sse {
		started = x.startSSE()
	} else {
		x.w.Header().Set("Content-Type", "application/json")
		x.w.WriteHeader(http.StatusOK)
		started = x.write([]byte("["))
	}
	if !started {
		return
	}
	send := func(i int, v obj) bool {
		if sse {
			return x.event("", v)
		}
		b, _ := json.Marshal(v)
		if i > 0 {
			b = append([]byte(",\r\n"), b...)
		}
		return x.write(b)
	}
	for i := range c.chunks {
		if !x.beforeChunk(c, i) || !send(i, response(Chunk(i), i == c.chunks-1, outputTokens(i+1))) {
			return
		}
	}
	x.beforeEnd(c)
	if c.chunks == 0 && !send(0, response("", true, 0)) {
		return
	}
	if !sse {
		x.write([]byte("]"))
	}
}

// geminiKey checks for a key in x-goog-api-key or ?key=.
func geminiKey(x *exchange) bool {
	if x.r.Header.Get("x-goog-api-key") != "" || x.r.URL.Query().Get("key") != "" {
		return true
	}
	gemini.writeError(x.w, http.StatusForbidden,
		"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
	return false
}

// serveGeminiModels lists the fake models in Gemini's shape.
func serveGeminiModels(x *exchange) {
	if !x.allow(gemini, http.MethodGet) || !geminiKey(x) {
		return
	}
	list := make([]obj, len(models))
	for i, m := range models {
		list[i] = obj{
			"name":                       "models/" + m,
			"displayName":                m,
			"supportedGenerationMethods": []string{"generateContent", "streamGenerateContent"},
		}
	}
	writeJSON(x.w, http.StatusOK, obj{"models": list})
}
