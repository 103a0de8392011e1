package pipedrivetest

import (
	"maps"
	"slices"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// Test-facing helpers for webhooks: plant, remove and inspect them without
// an API call.

// Webhooks returns a copy of a company's webhooks, ordered by id.
func (s *Server) Webhooks(companyID int64) []pipedrive.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.company(companyID)
	if co == nil {
		return nil
	}
	return co.sortedHooks()
}

// PutWebhook plants a webhook as if someone else had created it (foreign,
// wrong version, wrong credentials, inactive …). A zero ID gets a fresh one;
// an existing ID is replaced. Empty Type becomes "general", zero AddTime now.
// It returns the stored webhook.
func (s *Server) PutWebhook(companyID int64, w pipedrive.Webhook) pipedrive.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	co := s.mustCompany(companyID)
	if co == nil {
		return pipedrive.Webhook{}
	}
	if w.ID == 0 {
		w.ID = s.newHookID()
	} else if owner, ok := s.hookOwner[w.ID]; ok && owner != companyID {
		delete(s.companies[owner].hooks, w.ID)
	}
	if w.ID >= s.nextHookID {
		s.nextHookID = w.ID
	}
	w.CompanyID = companyID
	if w.Type == "" {
		w.Type = "general"
	}
	if w.AddTime.IsZero() {
		w.AddTime = s.now().UTC().Truncate(time.Millisecond)
	}
	s.storeHook(co, w)
	return cloneHook(w)
}

// DeleteBehindBack removes a webhook without an API call, as Pipedrive does
// after three days of failed deliveries. It reports whether it existed.
func (s *Server) DeleteBehindBack(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, ok := s.hookOwner[id]
	if !ok {
		return false
	}
	delete(s.companies[owner].hooks, id)
	delete(s.hookOwner, id)
	return true
}

// MaxConcurrentWebhooks is the highest number of webhooks the company ever
// had at one instant; it shows whether a reconciler created before deleting
// or ever created a duplicate.
func (s *Server) MaxConcurrentWebhooks(companyID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if co := s.company(companyID); co != nil {
		return co.maxHooks
	}
	return 0
}

func (s *Server) newHookID() int64 {
	s.nextHookID++
	return s.nextHookID
}

// storeHook saves w and tracks the high-water mark. Callers hold s.mu.
func (s *Server) storeHook(co *company, w pipedrive.Webhook) {
	c := cloneHook(w)
	if co.hooks == nil {
		co.hooks = map[int64]*pipedrive.Webhook{}
	}
	co.hooks[w.ID] = &c
	s.hookOwner[w.ID] = co.ID
	co.maxHooks = max(co.maxHooks, len(co.hooks))
}

func (co *company) sortedHooks() []pipedrive.Webhook {
	ids := slices.Sorted(maps.Keys(co.hooks))
	out := make([]pipedrive.Webhook, 0, len(ids))
	for _, id := range ids {
		out = append(out, cloneHook(*co.hooks[id]))
	}
	return out
}

// cloneHook copies the pointer fields so that callers cannot change the
// fake's state through a snapshot.
func cloneHook(w pipedrive.Webhook) pipedrive.Webhook {
	if w.RemoveTime != nil {
		t := *w.RemoveTime
		w.RemoveTime = &t
	}
	if w.LastDeliveryTime != nil {
		t := *w.LastDeliveryTime
		w.LastDeliveryTime = &t
	}
	if w.LastHTTPStatus != nil {
		n := *w.LastHTTPStatus
		w.LastHTTPStatus = &n
	}
	return w
}
