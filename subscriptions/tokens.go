package subscriptions

import (
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// apiTokens follows the PIPEDRIVE_API_TOKENS entries: which company each
// one is connected to, learnt from the records' keyed token hashes (so a
// restart needs no GET /users/me for an entry already connected), and, on
// the leader that tries them, why one is not connected yet. Entries are
// named by their position, never by their value. It holds a few dozen
// bytes per entry, and the details of a failure only while there is one.
type apiTokens struct {
	values []string // the tokens; never shown, logged or stored in clear
	hash   func(string) string

	mu sync.Mutex
	// byHash finds an entry by the first 8 bytes of its token's keyed
	// hash (half the memory of the whole digest); a candidate is confirmed
	// on the whole digest, computed again.
	byHash    map[uint64]int32
	entries   []tokenEntry
	failures  map[int]*tokenFailure
	byCompany map[int64]int32 // a company → the entry connected to it
}

// tokenDigest is the raw keyed hash (store.Store.TokenHash is its base64).
type tokenDigest [32]byte

func digestOf(hash string) (d tokenDigest, ok bool) {
	n, err := base64.RawStdEncoding.Decode(d[:], []byte(hash))
	return d, err == nil && n == len(d)
}

func (d tokenDigest) prefix() uint64 { return binary.LittleEndian.Uint64(d[:8]) }

// entryOfDigest returns the entry whose token has digest d. Callers hold
// t.mu.
func (t *apiTokens) entryOfDigest(d tokenDigest) (int, bool) {
	i, ok := t.byHash[d.prefix()]
	if !ok {
		return 0, false
	}
	if full, _ := digestOf(t.hash(t.values[i])); full != d {
		return 0, false // another token with the same first 8 bytes
	}
	return int(i), true
}

type tokenEntry struct {
	companyID int64 // 0 while not connected
	// dropped: not tried again before the next start (its company was
	// disconnected, or the entry repeats an earlier one).
	dropped bool
}

// tokenFailure is why an entry is not connected yet.
type tokenFailure struct {
	// rejected: Pipedrive refused the token (401/403); it is tried again
	// at the next resync.
	rejected   bool
	lastError  string
	lastStatus int
	attempts   int
	lastTry    time.Time
}

// Entry states in the admin list and the metrics.
const (
	tokenConnected = "connected"
	tokenPending   = store.StatePending
	tokenError     = store.StateError
)

func newAPITokens(values []string, hash func(string) string) *apiTokens {
	t := &apiTokens{
		values: values, hash: hash, byHash: make(map[uint64]int32, len(values)), entries: make([]tokenEntry, len(values)),
		failures: map[int]*tokenFailure{}, byCompany: make(map[int64]int32, len(values)),
	}
	for i, v := range values {
		d, _ := digestOf(hash(v))
		if j, taken := t.byHash[d.prefix()]; taken {
			// The same token as an earlier entry, which connects it; two
			// tokens whose digests share 8 bytes (about never) leave the
			// later one to be connected by its GET /users/me.
			if values[j] == v {
				t.entries[i].dropped = true
			}
			continue
		}
		t.byHash[d.prefix()] = int32(i)
	}
	return t
}

// entryKey is the scheduler key of entry i: negative, so that it never
// meets a company id.
func entryKey(i int) int64 { return -int64(i) - 1 }

func entryOf(key int64) (int, bool) { return int(-key - 1), key < 0 }

// seen learns from a company record which entry, if any, it connects.
func (t *apiTokens) seen(c *store.Company) {
	d, ok := digestOf(c.APITokenHash)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.entryOfDigest(d); ok {
		t.connectLocked(i, c.ID)
	}
}

// gone forgets a deleted company: its entry is not connected, and not
// tried again before the next start (the operator disconnected it).
func (t *apiTokens) gone(id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.byCompany[id]; ok {
		delete(t.byCompany, id)
		t.entries[i] = tokenEntry{dropped: true}
	}
}

// connected records that entry i belongs to company id.
func (t *apiTokens) connected(i int, id int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.connectLocked(i, id)
}

func (t *apiTokens) connectLocked(i int, id int64) {
	e := t.entries[i]
	if e.companyID == id {
		return
	}
	if e.companyID != 0 {
		delete(t.byCompany, e.companyID)
	}
	t.entries[i] = tokenEntry{companyID: id}
	t.byCompany[id] = int32(i)
	delete(t.failures, i)
}

// companyOf returns the company entry i is connected to, 0 if none.
func (t *apiTokens) companyOf(i int) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.entries[i].companyID
}

// ownerOf returns the entry connected to company id.
func (t *apiTokens) ownerOf(id int64) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.byCompany[id]
	return int(i), ok
}

// failed records a failed try and reports whether it is the first failure
// of this kind (worth a warning; the rest are retries of it).
func (t *apiTokens) failed(i int, res result, status int, now time.Time) (first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.failures[i]
	if f == nil {
		f = &tokenFailure{}
		t.failures[i] = f
	}
	first = f.attempts == 0 || f.rejected != res.permanent || f.lastStatus != status
	f.attempts++
	f.lastTry, f.lastStatus, f.rejected = now, status, res.permanent
	f.lastError = res.err.Error()
	return first
}

// toConnect lists the entries the leader must try: not connected, not
// dropped.
func (t *apiTokens) toConnect() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int
	for i, e := range t.entries {
		if e.companyID == 0 && !e.dropped {
			out = append(out, i)
		}
	}
	return out
}

// views lists the entries that are not connected, as the admin list shows
// them: company_id 0, token_entry = position (1-based).
func (t *apiTokens) views() []View {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []View
	for i, e := range t.entries {
		if e.companyID != 0 || e.dropped {
			continue
		}
		v := View{TokenEntry: i + 1, Auth: store.AuthAPIToken, State: tokenPending}
		if f := t.failures[i]; f != nil {
			v.LastError = f.lastError
			if f.rejected {
				v.State = tokenError
			}
			if f.lastStatus != 0 {
				status := f.lastStatus
				v.LastHTTPStatus = &status
			}
			at := f.lastTry.UTC()
			v.LastReconcile = &at
		}
		out = append(out, v)
	}
	return out
}

// counts are the entries by state, for the metrics.
func (t *apiTokens) counts() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := map[string]int64{tokenConnected: 0, tokenPending: 0, tokenError: 0}
	for i, e := range t.entries {
		switch {
		case e.companyID != 0:
			n[tokenConnected]++
		case e.dropped:
		case t.failures[i] != nil && t.failures[i].rejected:
			n[tokenError]++
		default:
			n[tokenPending]++
		}
	}
	return n
}

// value is the token of entry i.
func (t *apiTokens) value(i int) string { return t.values[i] }
