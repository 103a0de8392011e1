package subscriptions

import (
	"context"
	"errors"

	"github.com/pipedrive-gateway/pipedrive-gateway/subscriptions/internal/store"
)

// sealAgain writes the records still sealed under a previous key (or in
// the first format) again under the current STATE_KEY, so that a rotation
// finishes without waiting for each company's next change. It returns how
// many are still under an old key. The write is compare-and-set: a record
// changed meanwhile was sealed under the current key by that change.
func (m *Manager) sealAgain(ctx context.Context, companies []*store.Company) (oldKey int) {
	for _, c := range companies {
		if !m.store.OldKey(c) {
			continue
		}
		err := m.store.Update(ctx, c)
		switch {
		case err == nil:
			m.log.Info("company record sealed again under the current STATE_KEY", "company_id", c.ID)
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrUnknownCompany):
			// changed or deleted meanwhile: the next scan looks again
			oldKey++
		default:
			oldKey++
			m.log.Warn("cannot seal a company record again", "company_id", c.ID, "error", err)
		}
	}
	return oldKey
}
