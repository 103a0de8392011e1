package service

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// loadOrCreateKey returns the state key kept in dataDir for the embedded
// default, generating it on first start. Losing the file means losing the
// stored tokens, so the warning says where it is.
func loadOrCreateKey(dataDir string, log *slog.Logger) ([]byte, error) {
	path := filepath.Join(dataDir, "state.key")
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("state key file %s is not 32 bytes of base64", path)
		}
		log.Warn("STATE_KEY not set: using the key kept in the data directory; set STATE_KEY in production", "path", path)
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("failed to read state key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", dataDir, err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write state key: %w", err)
	}
	log.Warn("STATE_KEY not set: generated a key into the data directory; keep it with the data or set STATE_KEY", "path", path)
	return key, nil
}
