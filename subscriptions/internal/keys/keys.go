// Package keys derives the subscription side's working keys from STATE_KEY
// and the keys of STATE_KEY_PREVIOUS: one subkey per purpose (company
// records, commands between replicas, install tickets and OAuth states),
// so that a key used for one purpose never authenticates another. It must
// not know what is sealed or signed with them.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Set is the keys derived from one STATE_KEY.
type Set struct {
	// ID names the STATE_KEY without revealing it (a derived fingerprint):
	// a sealed record carries it, so a reader knows which key to open it
	// with and whether it is still under an old one.
	ID string
	// Master is the STATE_KEY itself; only records of the first format,
	// whose secrets were sealed with it directly, are opened with it.
	Master []byte

	record  cipher.AEAD
	install cipher.AEAD
	command []byte
	lookup  []byte
}

// Ring is the current key set and the earlier ones still accepted.
type Ring struct {
	Current  *Set
	Previous []*Set
}

// New derives the ring from STATE_KEY and STATE_KEY_PREVIOUS (each 32 bytes).
func New(current []byte, previous ...[]byte) (*Ring, error) {
	cur, err := derive(current)
	if err != nil {
		return nil, fmt.Errorf("STATE_KEY: %w", err)
	}
	r := &Ring{Current: cur}
	for i, p := range previous {
		s, err := derive(p)
		if err != nil {
			return nil, fmt.Errorf("STATE_KEY_PREVIOUS entry %d: %w", i+1, err)
		}
		if s.ID == cur.ID {
			continue // the current key listed again: nothing to rotate from
		}
		r.Previous = append(r.Previous, s)
	}
	return r, nil
}

// All is the current set followed by the previous ones.
func (r *Ring) All() []*Set { return append([]*Set{r.Current}, r.Previous...) }

// Find returns the set whose ID is id.
func (r *Ring) Find(id string) (*Set, bool) {
	for _, s := range r.All() {
		if s.ID == id {
			return s, true
		}
	}
	return nil, false
}

// The HKDF info strings: one per purpose, versioned so that a change of
// format can derive fresh keys.
const (
	infoID      = "pipedrive-gateway v1 key id"
	infoRecord  = "pipedrive-gateway v1 company record"
	infoCommand = "pipedrive-gateway v1 leader command"
	infoInstall = "pipedrive-gateway v1 oauth install"
	infoLookup  = "pipedrive-gateway v1 oauth lookup"
)

func derive(master []byte) (*Set, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("want 32 bytes, got %d", len(master))
	}
	sub := func(info string) []byte {
		k, err := hkdf.Key(sha256.New, master, nil, info, 32)
		if err != nil {
			panic(err) // only for lengths HKDF-SHA256 cannot give
		}
		return k
	}
	s := &Set{ID: hex.EncodeToString(sub(infoID)[:8]), Master: master, command: sub(infoCommand), lookup: sub(infoLookup)}
	var err error
	if s.record, err = NewAEAD(sub(infoRecord)); err != nil {
		return nil, err
	}
	if s.install, err = NewAEAD(sub(infoInstall)); err != nil {
		return nil, err
	}
	return s, nil
}

// NewAEAD is AES-256-GCM under key.
func NewAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("invalid key: %w", err)
	}
	return cipher.NewGCM(block)
}

// ErrOpen means a sealed value did not authenticate.
var ErrOpen = errors.New("does not authenticate")

// Seal encrypts and authenticates plain, bound to aad, with a random nonce
// in front.
func Seal(a cipher.AEAD, plain, aad []byte) []byte {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand never fails on supported platforms
	return a.Seal(nonce, nonce, plain, aad)
}

// Open reverses Seal; ErrOpen when sealed was changed, bound to another
// aad or sealed under another key.
func Open(a cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	n := a.NonceSize()
	if len(sealed) < n+a.Overhead() {
		return nil, ErrOpen
	}
	plain, err := a.Open(nil, sealed[:n], sealed[n:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// Record seals company records.
func (s *Set) Record() cipher.AEAD { return s.record }

// Install seals install tickets and OAuth states.
func (s *Set) Install() cipher.AEAD { return s.install }

// CommandMAC is HMAC-SHA256 of parts under the command key, each part
// length-prefixed so that no two different lists give the same input.
func (s *Set) CommandMAC(parts ...[]byte) []byte { return mac(s.command, parts) }

// Lookup names a secret (a ticket, a state) in a store without revealing
// it: someone who can read the store cannot redeem what it names, and
// someone who can write it cannot add a name for a secret of their own.
func (s *Set) Lookup(kind, secret string) string {
	return hex.EncodeToString(mac(s.lookup, [][]byte{[]byte(kind), []byte(secret)}))
}

func mac(key []byte, parts [][]byte) []byte {
	h := hmac.New(sha256.New, key)
	var n [8]byte
	for _, p := range parts {
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (56 - 8*i))
		}
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}
