package subscriptions

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// sealer encrypts the secret part of a company record with AES-256-GCM.
// The company id is the additional data, so a sealed blob copied onto
// another company's record does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("invalid state key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, companyID string) string {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(companyID)))
}

var errSealed = errors.New("cannot decrypt stored secrets: STATE_KEY differs from the key they were written with")

func (s *sealer) open(sealed, companyID string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return nil, errSealed
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(companyID))
	if err != nil {
		return nil, errSealed
	}
	return plain, nil
}

// LoadOrCreateKey returns the state key kept in dataDir for the embedded
// default, generating it on first start. Losing the file means losing the
// stored tokens, so the warning says where it is.
func LoadOrCreateKey(dataDir string, log *slog.Logger) ([]byte, error) {
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
