package subscriptions

import (
	"slices"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// desired is the one webhook a company should have.
type desired struct {
	URL      string // PUBLIC_URL + /webhooks/pipedrive/<id>
	Name     string // WEBHOOK_NAME
	User     string
	Password string
	// KnownID is the webhook id remembered in the store, 0 if none.
	KnownID int64
}

type actionKind int

const (
	actCreate actionKind = iota
	actDelete
)

// action is one write against Pipedrive.
type action struct {
	Kind   actionKind
	ID     int64  // webhook to delete
	Reason string // why, for logs and tests
}

// plan compares the wanted webhook with the company's webhooks and returns
// the writes to make: creates first, then deletes (make before break, so the
// company is never without a working webhook). Webhooks that are not ours
// are never touched. An empty plan means no drift.
func plan(want desired, actual []pipedrive.Webhook) []action {
	var ours, good []pipedrive.Webhook
	for _, w := range actual {
		if !isOurs(want, w) {
			continue
		}
		ours = append(ours, w)
		if correct(want, w) {
			good = append(good, w)
		}
	}
	var keep int64
	var acts []action
	if len(good) == 0 {
		acts = append(acts, action{Kind: actCreate, Reason: "no correct webhook"})
	} else {
		// Keep the remembered one if it is correct, else the oldest.
		slices.SortFunc(good, func(a, b pipedrive.Webhook) int {
			switch {
			case a.ID == want.KnownID:
				return -1
			case b.ID == want.KnownID:
				return 1
			}
			return int(a.ID - b.ID)
		})
		keep = good[0].ID
	}
	for _, w := range ours {
		if w.ID == keep {
			continue
		}
		acts = append(acts, action{Kind: actDelete, ID: w.ID, Reason: whyWrong(want, w)})
	}
	return acts
}

// isOurs: our URL, the id we remember, or our name with our Basic user (so
// that a changed PUBLIC_URL migrates the old hook instead of orphaning it).
func isOurs(want desired, w pipedrive.Webhook) bool {
	return w.SubscriptionURL == want.URL ||
		(want.KnownID != 0 && w.ID == want.KnownID) ||
		(w.Name == want.Name && want.User != "" && w.HTTPAuthUser == want.User)
}

func correct(want desired, w pipedrive.Webhook) bool {
	return whyWrong(want, w) == "duplicate"
}

// whyWrong names the first difference from the wanted webhook, or
// "duplicate" when there is none.
func whyWrong(want desired, w pipedrive.Webhook) string {
	switch {
	case w.SubscriptionURL != want.URL:
		return "old subscription URL"
	case w.Version != "2.0":
		return "wrong version " + w.Version
	case w.EventAction != "*" || w.EventObject != "*":
		return "wrong events " + w.EventAction + "." + w.EventObject
	case !w.Active():
		return "inactive"
	case w.HTTPAuthUser != want.User || w.HTTPAuthPassword != want.Password:
		return "wrong credentials"
	}
	return "duplicate"
}
