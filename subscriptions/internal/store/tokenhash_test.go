package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// TestTokenHashKeptWithTheRecord: every write keeps the keyed hash of the
// API token with the record (sealed with it), and the hash depends on
// STATE_KEY: it is neither the token nor its plain SHA-256.
func TestTokenHashKeptWithTheRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, kv, _ := newKV(t, ring(t, 9))
	const token = "tok-42-very-secret"
	c := &Company{ID: 42, Auth: AuthAPIToken, Status: Status{State: StatePending}, Secrets: Secrets{APIToken: token, WebhookPassword: "p"}}
	if err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, 42)
	if err != nil {
		t.Fatal(err)
	}
	want := s.TokenHash(token)
	if got.APITokenHash == "" || got.APITokenHash != want {
		t.Fatalf("stored hash %q, want %q", got.APITokenHash, want)
	}
	plain := sha256.Sum256([]byte(token))
	if strings.Contains(want, token) || want == base64.RawStdEncoding.EncodeToString(plain[:]) {
		t.Errorf("hash %q is not keyed", want)
	}
	if other := newTokenHasher(bytes.Repeat([]byte{8}, 32)).hash(token); other == want {
		t.Error("the hash does not depend on STATE_KEY")
	}
	raw, err := kv.Get(ctx, "company.42")
	if err != nil {
		t.Fatal(err)
	}
	if v := string(raw.Value()); strings.Contains(v, token) || strings.Contains(v, want) {
		t.Errorf("the KV value shows the token or its hash in clear: %s", v)
	}

	// A new token replaces the hash; OAuth companies have none.
	got.Secrets.APIToken = "tok-42-new"
	if err := s.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Get(ctx, 42); again.APITokenHash != s.TokenHash("tok-42-new") {
		t.Errorf("hash after a new token: %q", again.APITokenHash)
	}
	got.Auth, got.Secrets.APIToken, got.Secrets.AccessToken = AuthOAuth, "", "access"
	if err := s.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Get(ctx, 42); again.APITokenHash != "" {
		t.Errorf("an OAuth company keeps a token hash %q", again.APITokenHash)
	}
}
