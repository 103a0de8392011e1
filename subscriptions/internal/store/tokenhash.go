package store

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// tokenHasher makes the keyed hash of an API token that a company record
// keeps with the token, so that the leader can tell at start which
// PIPEDRIVE_API_TOKENS entries are connected already without asking
// Pipedrive (GET /users/me) for each. HMAC-SHA256 under a key derived from
// STATE_KEY for this purpose alone: without the key, the hash tells nothing
// about the token, and guessed tokens cannot be tested against a copied
// bucket. Records written under a previous STATE_KEY carry that key's
// hash until they are sealed again (a restart in between costs one
// /users/me per such token).
type tokenHasher struct{ key []byte }

// tokenHashInfo is the HKDF info of the hash key, versioned like the
// ring's own subkeys.
const tokenHashInfo = "pipedrive-gateway v1 api token index"

func newTokenHasher(stateKey []byte) tokenHasher {
	k, err := hkdf.Key(sha256.New, stateKey, nil, tokenHashInfo, 32)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot give
	}
	return tokenHasher{key: k}
}

func (h tokenHasher) hash(token string) string {
	if token == "" {
		return ""
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(token))
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// TokenHash is the keyed hash a record written now keeps for token
// (Company.APITokenHash).
func (s *Store) TokenHash(token string) string { return s.hasher.hash(token) }
