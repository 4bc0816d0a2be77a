package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Table is a Markdown table, padded so it also reads as plain text.
type Table struct {
	Header []string
	Rows   [][]string
}

// Write prints t; rows shorter than the header are padded with blanks.
func (t Table) Write(w io.Writer) error {
	width := make([]int, len(t.Header))
	for _, row := range append([][]string{t.Header}, t.Rows...) {
		for i, cell := range row[:min(len(row), len(width))] {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	line := func(cells func(i int) string) {
		b.WriteString("|")
		for i := range width {
			c := cells(i)
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		b.WriteString("\n")
	}
	line(func(i int) string { return t.Header[i] })
	line(func(i int) string { return strings.Repeat("-", max(width[i], 3)) })
	for _, row := range t.Rows {
		line(func(i int) string {
			if i < len(row) {
				return row[i]
			}
			return ""
		})
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Cell formats for the table. A value that was not measured is "—".
const none = "—"

// micros formats a CPU time per request.
func micros(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// millis formats a latency.
func millis(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// added formats a latency minus the reference's, signed: noise can make it
// negative, and the table shows it rather than a clamped zero.
func added(d, ref time.Duration) string {
	diff := float64(d-ref) / float64(time.Millisecond)
	if diff < 0 {
		return fmt.Sprintf("−%.2f ms", -diff)
	}
	return fmt.Sprintf("+%.2f ms", diff)
}

// mib formats sizes in MiB, one per process, joined by " + ".
func mib(sizes []int64) string { return perProcess(sizes, 1<<20, "%.0f", " MiB") }

// kib formats sizes in KiB to a tenth, one per process, joined by " + ".
func kib(sizes []int64) string { return perProcess(sizes, 1<<10, "%.1f", " KiB") }

func perProcess(sizes []int64, unit float64, format, suffix string) string {
	if len(sizes) == 0 {
		return none
	}
	parts := make([]string, len(sizes))
	for i, s := range sizes {
		parts[i] = fmt.Sprintf(format, float64(s)/unit)
	}
	return strings.Join(parts, " + ") + suffix
}
