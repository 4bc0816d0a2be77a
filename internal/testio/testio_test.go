package testio

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
)

func TestStallingBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		b := NewStallingBody(ctx, 5)
		buf := make([]byte, 3)
		for got := 0; got < 5; {
			n, err := b.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
		done := make(chan error, 1)
		go func() { _, err := b.Read(buf); done <- err }()
		synctest.Wait() // the reader is blocked for good
		select {
		case err := <-done:
			t.Fatalf("read after the bytes returned %v, want a stall", err)
		default:
		}
		b.Close()
		if err := <-done; !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("after Close: %v", err)
		}
		cancel()
		if _, err := NewStallingBody(ctx, 0).Read(buf); !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
	})
}

func TestBuffer(t *testing.T) {
	var b Buffer
	b.Logger().Info("hello", "k", "v")
	if got := b.String(); !strings.Contains(got, "msg=hello k=v") {
		t.Fatalf("%q", got)
	}
}
