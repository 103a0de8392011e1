// Package testlog routes a test's slog output through t.Log, so that logs
// show up with the test that wrote them and only when it fails or runs -v.
// It must not know the gateway.
package testlog

import (
	"log/slog"
	"strings"
	"testing"
)

// Writer writes each line to t.Log.
type Writer struct{ T testing.TB }

func (w Writer) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// New returns a text logger at debug level writing through t.Log.
func New(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer{T: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
