package fakeprovider

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// models is what the model lists offer; any model name is accepted anyway.
var models = []string{"fake-gpt", "fake-claude", "fake-gemini"}

type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// serveChat answers OpenAI (and OpenRouter) chat completions. A stream is
// the content chunks, a chunk with finish_reason "stop", a usage chunk when
// stream_options.include_usage is set, then data: [DONE].
func serveChat(x *exchange) {
	var req chatRequest
	if !x.allow(openAI, http.MethodPost) || !x.decode(openAI, &req) {
		return
	}
	c, ok := x.control(openAI)
	if !ok || !x.prelude(openAI, c) {
		return
	}
	id := x.p.nextID("chatcmpl-fake-")
	created := time.Now().Unix()
	usage := obj{
		"prompt_tokens":     x.inputTokens(),
		"completion_tokens": outputTokens(c.chunks),
		"total_tokens":      x.inputTokens() + outputTokens(c.chunks),
	}
	head := func(object string) obj {
		return obj{"id": id, "object": object, "created": created, "model": req.Model, "system_fingerprint": "fp_fake"}
	}

	if !req.Stream {
		if !x.pace(c) {
			return
		}
		resp := head("chat.completion")
		resp["choices"] = []obj{{
			"index":         0,
			"message":       obj{"role": "assistant", "content": Text(c.chunks), "refusal": nil},
			"logprobs":      nil,
			"finish_reason": "stop",
		}}
		resp["usage"] = usage
		x.finish(c, resp)
		return
	}

	if !x.startSSE() {
		return
	}
	for i := range c.chunks {
		if !x.beforeChunk(c, i) {
			return
		}
		delta := obj{"content": Chunk(i)}
		if i == 0 {
			delta["role"] = "assistant"
		}
		chunk := head("chat.completion.chunk")
		chunk["choices"] = []obj{{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": nil}}
		if !x.event("", chunk) {
			return
		}
	}
	x.beforeEnd(c)
	last := head("chat.completion.chunk")
	last["choices"] = []obj{{"index": 0, "delta": obj{}, "logprobs": nil, "finish_reason": "stop"}}
	if !x.event("", last) {
		return
	}
	if req.StreamOptions.IncludeUsage {
		u := head("chat.completion.chunk")
		u["choices"] = []obj{}
		u["usage"] = usage
		if !x.event("", u) {
			return
		}
	}
	x.event("", "[DONE]")
}

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
}

// embeddingDims is the length of the fake embedding vectors.
const embeddingDims = 8

// serveEmbeddings answers one deterministic vector per input, derived from
// a hash of the input.
func serveEmbeddings(x *exchange) {
	var req embeddingRequest
	if !x.allow(openAI, http.MethodPost) || !x.decode(openAI, &req) {
		return
	}
	c, ok := x.control(openAI)
	if !ok || !x.prelude(openAI, c) {
		return
	}
	inputs := []json.RawMessage{req.Input}
	var list []json.RawMessage
	if json.Unmarshal(req.Input, &list) == nil {
		inputs = list
	}
	data := make([]obj, len(inputs))
	for i, in := range inputs {
		vec := embed(in)
		var v any = vec
		if req.EncodingFormat == "base64" {
			b := make([]byte, 0, 4*len(vec))
			for _, f := range vec {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
			}
			v = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = obj{"object": "embedding", "index": i, "embedding": v}
	}
	writeJSON(x.w, http.StatusOK, obj{
		"object": "list",
		"data":   data,
		"model":  req.Model,
		"usage":  obj{"prompt_tokens": x.inputTokens(), "total_tokens": x.inputTokens()},
	})
}

// embed maps an input to a vector in [-1, 1).
func embed(in []byte) []float32 {
	sum := sha256.Sum256(in)
	vec := make([]float32, embeddingDims)
	for i := range vec {
		vec[i] = float32(int(sum[i])-128) / 128
	}
	return vec
}

// serveModels lists the fake models. The path is shared by OpenAI and
// Anthropic; a request carrying anthropic-version gets Anthropic's shape.
func serveModels(x *exchange) {
	d := openAI
	if x.r.Header.Get("anthropic-version") != "" {
		d = anthropic
	}
	if !x.allow(d, http.MethodGet) {
		return
	}
	data := make([]obj, len(models))
	for i, m := range models {
		data[i] = modelObject(d, m)
	}
	if d == anthropic {
		writeJSON(x.w, http.StatusOK, obj{"data": data, "has_more": false, "first_id": models[0], "last_id": models[len(models)-1]})
		return
	}
	writeJSON(x.w, http.StatusOK, obj{"object": "list", "data": data})
}

// serveModel answers one model, whatever its name.
func serveModel(x *exchange, id string) {
	d := openAI
	if x.r.Header.Get("anthropic-version") != "" {
		d = anthropic
	}
	if !x.allow(d, http.MethodGet) {
		return
	}
	writeJSON(x.w, http.StatusOK, modelObject(d, id))
}

// modelCreated is a fixed creation time so answers are deterministic.
var modelCreated = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func modelObject(d dialect, id string) obj {
	if d == anthropic {
		return obj{"type": "model", "id": id, "display_name": id, "created_at": modelCreated.Format(time.RFC3339)}
	}
	return obj{"id": id, "object": "model", "created": modelCreated.Unix(), "owned_by": "llmesh-fake"}
}
