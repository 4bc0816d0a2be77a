// Package fakeprovider is a fake LLM provider for tests and demos.
//
// It speaks enough of the OpenAI (and OpenRouter), Anthropic and Gemini wire
// formats, JSON and streamed, for the official SDKs to work against it
// unmodified. Generated text is deterministic (see [Text]) so tests can
// compare what arrives at the client. Request headers named X-Fake-* let a
// test drive one request (chunk count, pacing, failures, status codes), and
// the [Provider] records what it received and whether clients went away, so
// a test can check what a proxy in front of it forwarded.
//
// Routes, as the provider receives them:
//
//	POST /v1/chat/completions, /api/v1/chat/completions   OpenAI / OpenRouter chat (JSON or SSE)
//	GET  /v1/models, /api/v1/models, /v1/models/{id}       model list (Anthropic shape when anthropic-version is sent)
//	POST /v1/embeddings, /api/v1/embeddings                embeddings (float or base64)
//	POST /v1/messages                                      Anthropic messages (JSON or SSE)
//	POST /v1beta/models/{model}:generateContent            Gemini (also under /v1/models/)
//	POST /v1beta/models/{model}:streamGenerateContent      Gemini stream: SSE with ?alt=sse, else a JSON array
//	GET  /v1beta/models                                    Gemini model list
//	ANY  .../echo/headers, .../echo/upload, .../echo/gzip, .../echo/redirect, .../echo/status/{code}
//
// It is a test tool: it checks only what the tests need (Anthropic's
// anthropic-version and key, Gemini's key) and is not hardened.
package fakeprovider
