package e2e

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
)

func errorsAs[T any](err error, target *T) bool { return err != nil && errors.As(err, target) }

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
