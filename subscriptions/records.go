package subscriptions

import (
	"context"
	"errors"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// sealAgain writes a record still sealed under a previous key (or in the
// first format) again under the current STATE_KEY, so that a rotation
// finishes without waiting for the company's next change. The write is a
// read-modify-write: a record changed meanwhile (a reconcile at start, say)
// is read again, and left alone when that change already sealed it under
// the current key. One that keeps changing, or cannot be written, stays in
// the old-key set the watch keeps, for the next storeSync.
func (m *Manager) sealAgain(ctx context.Context, c *store.Company) {
	if !m.store.OldKey(c) {
		return
	}
	_, err := m.store.Modify(ctx, c.ID, func(n *store.Company) error {
		if !m.store.OldKey(n) {
			return errSealedAlready
		}
		return nil
	})
	switch {
	case err == nil:
		m.log.Info("company record sealed again under the current STATE_KEY", "company_id", c.ID)
	case errors.Is(err, errSealedAlready), errors.Is(err, store.ErrUnknownCompany), errors.Is(err, store.ErrConflict):
	default:
		m.log.Warn("cannot seal a company record again", "company_id", c.ID, "error", err)
	}
}

// errSealedAlready stops a re-seal whose record a newer write already
// sealed under the current key.
var errSealedAlready = errors.New("record already sealed under the current key")
