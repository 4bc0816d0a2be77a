package fakeprovider

import (
	"net/http"
	"strings"
)

// route is how one path is answered.
type route struct {
	dialect dialect // shape of error bodies
	json    bool    // the body is kept (capped) for decoding
	serve   func(x *exchange)
}

// match picks the route for a path as the provider receives it.
func match(path string) route {
	if rt, ok := matchEcho(path); ok {
		return rt
	}
	switch path {
	case "/v1/chat/completions", "/api/v1/chat/completions":
		return route{openAI, true, serveChat}
	case "/v1/embeddings", "/api/v1/embeddings":
		return route{openAI, true, serveEmbeddings}
	case "/v1/models", "/api/v1/models":
		return route{openAI, false, serveModels}
	case "/v1/messages":
		return route{anthropic, true, serveMessages}
	case "/v1beta/models":
		return route{gemini, false, serveGeminiModels}
	}
	if model, method, ok := geminiPath(path); ok {
		switch method {
		case "generateContent":
			return route{gemini, true, func(x *exchange) { serveGemini(x, model, false) }}
		case "streamGenerateContent":
			return route{gemini, true, func(x *exchange) { serveGemini(x, model, true) }}
		}
		return route{gemini, false, notFound(gemini)}
	}
	for _, prefix := range []string{"/v1/models/", "/api/v1/models/"} {
		if id, ok := strings.CutPrefix(path, prefix); ok && id != "" && !strings.Contains(id, "/") {
			return route{openAI, false, func(x *exchange) { serveModel(x, id) }}
		}
	}
	return route{openAI, false, notFound(openAI)}
}

// geminiPath splits /v1beta/models/{model}:{method} (or /v1/models/...).
func geminiPath(path string) (model, method string, ok bool) {
	for _, prefix := range []string{"/v1beta/models/", "/v1/models/"} {
		rest, found := strings.CutPrefix(path, prefix)
		if !found {
			continue
		}
		model, method, ok = strings.Cut(rest, ":")
		if ok && model != "" && !strings.Contains(model, "/") {
			return model, method, true
		}
	}
	return "", "", false
}

func notFound(d dialect) func(x *exchange) {
	return func(x *exchange) {
		d.writeError(x.w, http.StatusNotFound, "fake provider: no route for "+x.r.Method+" "+x.r.URL.Path)
	}
}
