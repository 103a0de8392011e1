package store

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/keys"
)

// A record is stored as an envelope around the whole company, every field
// and the secrets together, sealed with AES-256-GCM under the record key
// derived from STATE_KEY and bound to its KV key ("company.<id>"):
//
//	{"v":2,"key":"<key id>","sealed":"<base64 nonce|ciphertext>"}
//
// Nothing in it is obeyed unless it authenticates, so a record changed
// outside the gateway, or copied onto another company's key, is unreadable
// rather than misread. "key" names the STATE_KEY it was sealed with, so a
// reader takes the right one of STATE_KEY and STATE_KEY_PREVIOUS and knows
// whether the record still has to be sealed again under the current key.
type envelope struct {
	V      int    `json:"v"`
	Key    string `json:"key"`
	Sealed []byte `json:"sealed"`
}

// recordVersion is the envelope format written now. Version 0 is the first
// format: clear fields with only the secrets sealed (see decodeLegacy).
const recordVersion = 2

// sealedRecord is what the envelope seals.
type sealedRecord struct {
	Company
	Secrets Secrets `json:"secrets"`
}

// ErrUnreadable means a stored record cannot be trusted: it does not
// authenticate under any of the keys (changed outside the gateway), it is
// sealed with a key the gateway does not have, or it is not a record.
var ErrUnreadable = errors.New("company record unreadable")

// UnreadableError says why one record is unreadable.
type UnreadableError struct {
	ID int64
	// UnknownKey: sealed with a STATE_KEY that is neither STATE_KEY nor in
	// STATE_KEY_PREVIOUS (a configuration problem rather than tampering).
	UnknownKey bool
	Reason     string
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("company %d: stored record unreadable: %s", e.ID, e.Reason)
}

// Is makes errors.Is(err, ErrUnreadable) hold.
func (e *UnreadableError) Is(target error) bool { return target == ErrUnreadable }

func aad(key string) []byte { return []byte("pipedrive-gateway company record\x00" + key) }

func (s *Store) encode(c *Company) ([]byte, error) {
	c.APITokenHash = s.hasher.hash(c.Secrets.APIToken)
	plain, err := json.Marshal(sealedRecord{Company: *c, Secrets: c.Secrets})
	if err != nil {
		return nil, err
	}
	cur := s.keys.Current
	return json.Marshal(envelope{V: recordVersion, Key: cur.ID, Sealed: keys.Seal(cur.Record(), plain, aad(companyKey(c.ID)))})
}

// decode opens the record stored under the key of company id.
func (s *Store) decode(id int64, b []byte, rev uint64) (*Company, error) {
	s.opened.Add(1)
	bad := func(unknownKey bool, format string, args ...any) error {
		return &UnreadableError{ID: id, UnknownKey: unknownKey, Reason: fmt.Sprintf(format, args...)}
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, bad(false, "not a company record")
	}
	if env.V == 0 && bytes.Contains(b, []byte(`"company_id"`)) {
		return s.decodeLegacy(id, b, rev)
	}
	if env.V != recordVersion {
		return nil, bad(false, "unknown record format %d", env.V)
	}
	set, ok := s.keys.Find(env.Key)
	if !ok {
		return nil, bad(true, "sealed with a key that is neither STATE_KEY nor in STATE_KEY_PREVIOUS (key id %q)", env.Key)
	}
	plain, err := keys.Open(set.Record(), env.Sealed, aad(companyKey(id)))
	if err != nil {
		return nil, bad(false, "does not authenticate under its key (changed outside the gateway, or copied from another company)")
	}
	var r sealedRecord
	if err := json.Unmarshal(plain, &r); err != nil || r.ID != id {
		return nil, bad(false, "sealed content is not this company's record")
	}
	c := r.Company
	c.Secrets = r.Secrets
	c.revision, c.keyID = rev, set.ID
	return &c, nil
}

// legacyRecord is the first format: clear fields, secrets sealed with the
// raw STATE_KEY bound to the company id only.
type legacyRecord struct {
	Company
	Sealed string `json:"sealed"`
}

// decodeLegacy reads a record of the first format, so that an upgrade
// loses no company; it is sealed again in the current format at the next
// write (the leader does so at once). Its clear fields were never
// authenticated: the id must match the key, and the remembered webhook id
// is dropped rather than trusted (the reconciler finds our webhook again by
// its URL, or its name and Basic user).
func (s *Store) decodeLegacy(id int64, b []byte, rev uint64) (*Company, error) {
	var r legacyRecord
	if err := json.Unmarshal(b, &r); err != nil || r.ID != id {
		return nil, &UnreadableError{ID: id, Reason: "not a company record"}
	}
	raw, err := base64.StdEncoding.DecodeString(r.Sealed)
	if err != nil {
		return nil, &UnreadableError{ID: id, Reason: "not a company record"}
	}
	for _, set := range s.keys.All() {
		a, err := keys.NewAEAD(set.Master)
		if err != nil {
			continue
		}
		plain, err := keys.Open(a, raw, []byte(strconv.FormatInt(id, 10)))
		if err != nil {
			continue
		}
		c := r.Company
		if err := json.Unmarshal(plain, &c.Secrets); err != nil {
			return nil, &UnreadableError{ID: id, Reason: "corrupt secrets"}
		}
		c.WebhookID = 0
		c.revision, c.keyID = rev, legacyKeyID
		return &c, nil
	}
	return nil, &UnreadableError{ID: id, UnknownKey: true, Reason: "first-format record whose secrets open with neither STATE_KEY nor STATE_KEY_PREVIOUS"}
}

// legacyKeyID marks a record read in the first format.
const legacyKeyID = "legacy"
