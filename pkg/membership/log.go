package membership

import (
	"context"
	"log/slog"
	"strings"
)

// logWriter bridges memberlist's *log.Logger to slog. memberlist tags each
// line with its level ("[WARN] memberlist: ..."); keeping that level lets
// operators see conflicts and refutations without memberlist's debug chatter.
type logWriter struct{ log *slog.Logger }

var logLevels = []struct {
	tag   string
	level slog.Level
}{
	{"[DEBUG]", slog.LevelDebug},
	{"[INFO]", slog.LevelInfo},
	{"[WARN]", slog.LevelWarn},
	{"[ERR]", slog.LevelError},
	{"[ERROR]", slog.LevelError},
}

func (w logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	for _, l := range logLevels {
		if rest, ok := strings.CutPrefix(msg, l.tag); ok {
			msg, level = strings.TrimSpace(rest), l.level
			break
		}
	}
	ctx := context.Background()
	if w.log.Enabled(ctx, level) {
		w.log.Log(ctx, level, msg)
	}
	return len(p), nil
}
