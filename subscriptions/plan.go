package subscriptions

import (
	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

// desired is the one webhook a company should have, and how to recognise
// the webhooks that are ours.
type desired struct {
	URL      string // the company's subscription URL; empty without PUBLIC_URL
	Name     string // WEBHOOK_NAME
	User     string
	Password string
	// KnownID is the webhook id remembered in the store, 0 if none.
	KnownID int64
	// None: the company is being disconnected and should have no webhook
	// of ours at all.
	None bool
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

// plan compares the wanted state with the company's webhooks. It returns
// the correct webhook it keeps (nil when it creates one, or wants none) and
// the writes to make: creates first, then deletes (make before break, so
// the company is never without a working webhook). Webhooks that are not
// ours are never touched. No actions means no drift.
func plan(want desired, actual []pipedrive.Webhook) (keep *pipedrive.Webhook, acts []action) {
	var ours []pipedrive.Webhook
	for _, w := range actual {
		if !isOurs(want, w) {
			continue
		}
		ours = append(ours, w)
		// Keep the remembered one if it is correct, else the oldest.
		if want.None || whyWrong(want, w) != "" {
			continue
		}
		if keep == nil || w.ID == want.KnownID || (keep.ID != want.KnownID && w.ID < keep.ID) {
			keep = &w
		}
	}
	if keep == nil && !want.None {
		acts = append(acts, action{Kind: actCreate, Reason: "no correct webhook"})
	}
	for _, w := range ours {
		switch {
		case keep != nil && w.ID == keep.ID:
		case want.None:
			acts = append(acts, action{Kind: actDelete, ID: w.ID, Reason: "disconnect"})
		case whyWrong(want, w) == "":
			acts = append(acts, action{Kind: actDelete, ID: w.ID, Reason: "duplicate"})
		default:
			acts = append(acts, action{Kind: actDelete, ID: w.ID, Reason: whyWrong(want, w)})
		}
	}
	return keep, acts
}

// isOurs: our URL, the id we remember, or our name with our Basic user (so
// that a changed PUBLIC_URL migrates the old hook instead of orphaning it).
func isOurs(want desired, w pipedrive.Webhook) bool {
	return (want.URL != "" && w.SubscriptionURL == want.URL) ||
		(want.KnownID != 0 && w.ID == want.KnownID) ||
		(w.Name == want.Name && want.User != "" && w.HTTPAuthUser == want.User)
}

// whyWrong names the first difference from the wanted webhook, or "" when
// there is none.
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
	return ""
}
