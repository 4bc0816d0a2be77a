package fakeprovider

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// openAIClient talks to srv under base ("/v1/" for OpenAI, "/api/v1/" for OpenRouter).
func openAIClient(srv *Server, base string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(srv.URL+base),
		option.WithAPIKey("sk-test"),
		option.WithMaxRetries(0),
	)
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
	}
}

func TestOpenAIChat(t *testing.T) {
	srv := start(t)
	for _, base := range []string{"/v1/", "/api/v1/"} {
		t.Run(base, func(t *testing.T) {
			client := openAIClient(srv, base)
			res, err := client.Chat.Completions.New(t.Context(), chatParams("fake-gpt"))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Choices[0].Message.Content; got != Text(DefaultChunks) {
				t.Errorf("content = %q, want %q", got, Text(DefaultChunks))
			}
			if res.Model != "fake-gpt" || res.Choices[0].FinishReason != "stop" || res.Usage.CompletionTokens == 0 {
				t.Errorf("model %q, finish %q, usage %+v", res.Model, res.Choices[0].FinishReason, res.Usage)
			}
		})
	}
}

func TestOpenAIChatStream(t *testing.T) {
	srv := start(t)
	client := openAIClient(srv, "/v1/")
	params := chatParams("fake-gpt-stream")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(t.Context(), params, option.WithHeader(HeaderChunks, "5"))
	defer stream.Close()

	var acc openai.ChatCompletionAccumulator
	var contents []string
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			t.Fatalf("accumulator rejected chunk %s", chunk.RawJSON())
		}
		if chunk.Model != "fake-gpt-stream" {
			t.Errorf("chunk model = %q", chunk.Model)
		}
		if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
			contents = append(contents, chunk.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	for i, c := range contents {
		if c != Chunk(i) {
			t.Errorf("chunk %d = %q, want %q", i, c, Chunk(i))
		}
	}
	if len(contents) != 5 {
		t.Errorf("got %d content chunks, want 5", len(contents))
	}
	if got := acc.Choices[0].Message.Content; got != Text(5) {
		t.Errorf("accumulated %q, want %q", got, Text(5))
	}
	if acc.Choices[0].FinishReason != "stop" || acc.Usage.CompletionTokens != int64(outputTokens(5)) {
		t.Errorf("finish %q, usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
}

func TestOpenAIStatus(t *testing.T) {
	srv := start(t)
	client := openAIClient(srv, "/v1/")
	_, err := client.Chat.Completions.New(t.Context(), chatParams("fake-gpt"), option.WithHeader(HeaderStatus, "429"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *openai.Error", err)
	}
	if apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Type != "rate_limit_error" || apiErr.Message == "" {
		t.Errorf("status %d, type %q, message %q", apiErr.StatusCode, apiErr.Type, apiErr.Message)
	}
	if got := apiErr.Response.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if n := srv.Stats().Requests; n != 1 {
		t.Errorf("%d requests, want 1 (retries disabled)", n)
	}
}

func TestOpenAIModels(t *testing.T) {
	srv := start(t)
	for _, base := range []string{"/v1/", "/api/v1/"} {
		client := openAIClient(srv, base)
		page, err := client.Models.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != len(models) || page.Data[0].ID != models[0] {
			t.Errorf("%s: models = %+v", base, page.Data)
		}
		m, err := client.Models.Get(t.Context(), "some-model")
		if err != nil {
			t.Fatal(err)
		}
		if m.ID != "some-model" {
			t.Errorf("%s: model id = %q", base, m.ID)
		}
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	srv := start(t)
	client := openAIClient(srv, "/v1/")
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		t.Run(string(format), func(t *testing.T) {
			res, err := client.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
				Model:          "fake-embed",
				Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
				EncodingFormat: format,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Data) != 2 || res.Model != "fake-embed" {
				t.Fatalf("got %d embeddings for model %q", len(res.Data), res.Model)
			}
			if format == openai.EmbeddingNewParamsEncodingFormatFloat {
				if len(res.Data[0].Embedding) != embeddingDims {
					t.Errorf("dims = %d", len(res.Data[0].Embedding))
				}
			} else if !strings.Contains(res.RawJSON(), `"embedding":"`) {
				t.Errorf("base64 not honoured: %s", res.RawJSON())
			}
		})
	}
}
