// Package grants keeps what lets a browser connect a company through
// OAuth: one-time install tickets (made through the admin API, valid 24 h)
// and OAuth states (one per install started, valid 10 minutes, bound to the
// browser that started it), in a NATS KV bucket, so that any replica can
// redeem what another made. It must not know Pipedrive or HTTP.
//
// Neither a ticket nor a state is stored: the KV key is a MAC of it under a
// key derived from STATE_KEY, so reading the bucket gives nothing to redeem
// and writing it cannot add a ticket. The values are sealed under another
// derived key, bound to their KV key. Redeeming deletes the entry with a
// compare-and-set on its revision: of two concurrent redemptions one wins.
package grants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/keys"
)

// Lifetimes of tickets and states.
const (
	TicketLifetime = 24 * time.Hour
	StateLifetime  = 10 * time.Minute
)

// ErrInvalid means a ticket or state is unknown, used, expired or (for a
// state) presented by another browser.
var ErrInvalid = errors.New("invalid, used or expired")

// Grants is the bucket.
type Grants struct {
	kv   jetstream.KeyValue
	keys *keys.Ring
	// keyTTL: the server expires each entry after its own lifetime (NATS
	// 2.11 and later), so states started and abandoned, which anyone can
	// make with OAUTH_INSTALL=open, go after minutes, not a day.
	keyTTL bool
}

// Open creates or opens the bucket. Entries expire on their own a little
// after their lifetime (on older servers, a little after the longest one);
// expiry is checked on redemption as well.
func Open(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, ring *keys.Ring) (*Grants, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:         bucket,
		Description:    "pipedrive-gateway install tickets and OAuth states",
		History:        1,
		TTL:            TicketLifetime + time.Hour,
		Replicas:       replicas,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: time.Minute,
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	keyTTL := err == nil
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		cfg.LimitMarkerTTL = 0
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open install bucket %s: %w", bucket, err)
	}
	return &Grants{kv: kv, keys: ring, keyTTL: keyTTL}, nil
}

// Ticket is a one-time install link's grant.
type Ticket struct {
	// CompanyID, when set, is the company the install may re-authorise,
	// replacing its API-token connection.
	CompanyID int64     `json:"company_id,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// State is an install in progress.
type State struct {
	// Ticketed: the install was started with a ticket (not OAUTH_INSTALL=open).
	Ticketed bool `json:"ticketed,omitempty"`
	// CompanyID is the ticket's company, if any.
	CompanyID int64     `json:"company_id,omitempty"`
	Browser   []byte    `json:"browser"` // SHA-256 of the browser's secret
	ExpiresAt time.Time `json:"expires_at"`
}

const (
	kindTicket = "ticket"
	kindState  = "state"
)

// NewTicket makes a ticket.
func (g *Grants) NewTicket(ctx context.Context, t Ticket) (string, error) {
	secret := rand.Text()
	return secret, g.put(ctx, kindTicket, secret, t, TicketLifetime)
}

// PeekTicket reports the ticket's grant without using it.
func (g *Grants) PeekTicket(ctx context.Context, secret string, now time.Time) (Ticket, error) {
	var t Ticket
	_, _, err := g.get(ctx, kindTicket, secret, &t)
	if err == nil && !now.Before(t.ExpiresAt) {
		err = ErrInvalid
	}
	return t, err
}

// UseTicket redeems the ticket: it cannot be used again.
func (g *Grants) UseTicket(ctx context.Context, secret string, now time.Time) (Ticket, error) {
	var t Ticket
	key, rev, err := g.get(ctx, kindTicket, secret, &t)
	if err != nil {
		return Ticket{}, err
	}
	if err := g.consume(ctx, key, rev); err != nil {
		return Ticket{}, err
	}
	if !now.Before(t.ExpiresAt) {
		return Ticket{}, ErrInvalid
	}
	return t, nil
}

// NewState makes the state of an install and the secret its browser keeps
// (in a cookie) to finish it.
func (g *Grants) NewState(ctx context.Context, s State) (state, browser string, err error) {
	state, browser = rand.Text(), rand.Text()
	h := sha256.Sum256([]byte(browser))
	s.Browser = h[:]
	return state, browser, g.put(ctx, kindState, state, s, StateLifetime)
}

// UseState redeems the state if browser is the secret of the browser that
// started the install. A state presented by another browser stays valid
// for its own.
func (g *Grants) UseState(ctx context.Context, state, browser string, now time.Time) (State, error) {
	var s State
	key, rev, err := g.get(ctx, kindState, state, &s)
	if err != nil {
		return State{}, err
	}
	h := sha256.Sum256([]byte(browser))
	if subtle.ConstantTimeCompare(h[:], s.Browser) != 1 {
		return State{}, ErrInvalid
	}
	if err := g.consume(ctx, key, rev); err != nil {
		return State{}, err
	}
	if !now.Before(s.ExpiresAt) {
		return State{}, ErrInvalid
	}
	return s, nil
}

func (g *Grants) put(ctx context.Context, kind, secret string, v any, lifetime time.Duration) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return err
	}
	cur := g.keys.Current
	key := kind + "." + cur.Lookup(kind, secret)
	var opts []jetstream.KVCreateOpt
	if g.keyTTL {
		opts = append(opts, jetstream.KeyTTL(lifetime+time.Minute))
	}
	if _, err := g.kv.Create(ctx, key, keys.Seal(cur.Install(), plain, []byte(key)), opts...); err != nil {
		return fmt.Errorf("failed to store the %s: %w", kind, err)
	}
	return nil
}

// get finds the entry of secret under any key of the ring and opens it.
func (g *Grants) get(ctx context.Context, kind, secret string, v any) (string, uint64, error) {
	if secret == "" || len(secret) > 128 {
		return "", 0, ErrInvalid
	}
	for _, set := range g.keys.All() {
		key := kind + "." + set.Lookup(kind, secret)
		e, err := g.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", 0, fmt.Errorf("failed to read the %s: %w", kind, err)
		}
		plain, err := keys.Open(set.Install(), e.Value(), []byte(key))
		if err != nil || json.Unmarshal(plain, v) != nil {
			return "", 0, ErrInvalid // written outside the gateway
		}
		return key, e.Revision(), nil
	}
	return "", 0, ErrInvalid
}

// consume deletes the entry read at rev; ErrInvalid if someone else did
// first.
func (g *Grants) consume(ctx context.Context, key string, rev uint64) error {
	err := g.kv.Purge(ctx, key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return ErrInvalid
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return ErrInvalid
	}
	if err != nil {
		return fmt.Errorf("failed to redeem: %w", err)
	}
	return nil
}
