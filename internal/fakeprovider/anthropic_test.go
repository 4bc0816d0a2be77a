package fakeprovider

import (
	"errors"
	"net/http"
	"testing"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

func anthropicClient(srv *Server) anthropicsdk.Client {
	return anthropicsdk.NewClient(
		option.WithBaseURL(srv.URL),
		option.WithAPIKey("sk-ant-test"),
		option.WithMaxRetries(0),
	)
}

func messageParams(model string) anthropicsdk.MessageNewParams {
	return anthropicsdk.MessageNewParams{
		Model:     model,
		MaxTokens: 1024,
		Messages:  []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("hello"))},
	}
}

func TestAnthropicMessage(t *testing.T) {
	srv := start(t)
	client := anthropicClient(srv)
	msg, err := client.Messages.New(t.Context(), messageParams("fake-claude"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != Text(DefaultChunks) {
		t.Fatalf("content = %+v, want %q", msg.Content, Text(DefaultChunks))
	}
	if msg.Model != "fake-claude" || msg.StopReason != anthropicsdk.StopReasonEndTurn {
		t.Errorf("model %q, stop %q", msg.Model, msg.StopReason)
	}
	if got := srv.Requests()[0].Header.Get("anthropic-version"); got == "" {
		t.Error("SDK request recorded without anthropic-version")
	}
}

func TestAnthropicStream(t *testing.T) {
	srv := start(t)
	client := anthropicClient(srv)
	stream := client.Messages.NewStreaming(t.Context(), messageParams("fake-claude"), option.WithHeader(HeaderChunks, "4"))
	defer stream.Close()

	var msg anthropicsdk.Message
	var deltas []string
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
		if d, ok := ev.AsAny().(anthropicsdk.ContentBlockDeltaEvent); ok {
			deltas = append(deltas, d.Delta.Text)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"message_start", "content_block_start", "content_block_delta", "content_block_delta",
		"content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
	for i, d := range deltas {
		if d != Chunk(i) {
			t.Errorf("delta %d = %q, want %q", i, d, Chunk(i))
		}
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != Text(4) {
		t.Fatalf("accumulated %+v, want %q", msg.Content, Text(4))
	}
	if msg.StopReason != anthropicsdk.StopReasonEndTurn || msg.Usage.OutputTokens != int64(outputTokens(4)) {
		t.Errorf("stop %q, usage %+v", msg.StopReason, msg.Usage)
	}
}

func TestAnthropicStatus(t *testing.T) {
	srv := start(t)
	client := anthropicClient(srv)
	_, err := client.Messages.New(t.Context(), messageParams("fake-claude"), option.WithHeader(HeaderStatus, "529"))
	var apiErr *anthropicsdk.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *anthropic.Error", err)
	}
	if apiErr.StatusCode != 529 {
		t.Errorf("status %d, want 529", apiErr.StatusCode)
	}
	if got := get(decodeRaw(t, apiErr.RawJSON()), "error", "type"); got != "overloaded_error" {
		t.Errorf("error type %v in %s", got, apiErr.RawJSON())
	}
}

func TestAnthropicHeaders(t *testing.T) {
	srv := start(t)
	body := `{"model":"fake-claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name      string
		header    map[string]string
		status    int
		errorType string
	}{
		{"no version", map[string]string{"x-api-key": "k"}, http.StatusBadRequest, "invalid_request_error"},
		{"no key", map[string]string{"anthropic-version": "2023-06-01"}, http.StatusUnauthorized, "authentication_error"},
		{"empty bearer", map[string]string{"anthropic-version": "2023-06-01", "Authorization": "Bearer "}, http.StatusUnauthorized, "authentication_error"},
		{"x-api-key", map[string]string{"anthropic-version": "2023-06-01", "x-api-key": "k"}, http.StatusOK, ""},
		{"bearer", map[string]string{"anthropic-version": "2023-06-01", "Authorization": "Bearer k"}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodPost, srv.URL+"/v1/messages", body, tt.header)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			v := decodeBody(t, res)
			if tt.errorType == "" {
				if get(v, "type") != "message" {
					t.Errorf("body %v", v)
				}
				return
			}
			if get(v, "type") != "error" || get(v, "error", "type") != tt.errorType || get(v, "error", "message") == "" {
				t.Errorf("body %v, want error type %s", v, tt.errorType)
			}
		})
	}
}

func TestAnthropicModels(t *testing.T) {
	srv := start(t)
	client := anthropicClient(srv)
	page, err := client.Models.List(t.Context(), anthropicsdk.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != len(models) || page.Data[0].ID != models[0] {
		t.Errorf("models = %+v", page.Data)
	}
}
