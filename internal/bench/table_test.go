package bench

import (
	"strings"
	"testing"
	"time"
)

func TestTableWrite(t *testing.T) {
	tab := Table{
		Header: []string{"setup", "CPU/req", "added p50"},
		Rows: [][]string{
			{"DIRECT", none, "0.21 ms"},
			{"llmesh tunnel", micros(160500 * time.Nanosecond), added(ms(1), ms(2))},
			{"short row"},
		},
	}
	var b strings.Builder
	if err := tab.Write(&b); err != nil {
		t.Fatal(err)
	}
	// Columns line up by characters, not bytes: µ, — and − are multi-byte.
	want := `| setup         | CPU/req  | added p50 |
| ------------- | -------- | --------- |
| DIRECT        | —        | 0.21 ms   |
| llmesh tunnel | 160.5 µs | −1.00 ms  |
| short row     |          |           |
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestCells(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{micros(46600 * time.Nanosecond), "46.6 µs"},
		{millis(960 * time.Microsecond), "0.96 ms"},
		{added(ms(2), ms(1)), "+1.00 ms"},
		{added(ms(1), ms(1)), "+0.00 ms"},
		{added(430*time.Microsecond, ms(1)), "−0.57 ms"},
		{mib(nil), none},
		{mib([]int64{112 << 20, 114<<20 + 1}), "112 + 114 MiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
