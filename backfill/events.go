package backfill

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/event"
)

// Actions of recovered events.
const (
	actionCreate = "create"
	actionChange = "change"
	actionDelete = "delete"
)

// classify decides the action of an object seen in a window that starts at
// from: deleted marker → delete; added inside the window → create (the
// consumer never saw it); else change.
func classify(it Item, from time.Time) string {
	switch {
	case it.Deleted:
		return actionDelete
	case !it.AddTime.IsZero() && !it.AddTime.Before(from):
		return actionCreate
	}
	return actionChange
}

// MsgID is the Nats-Msg-Id of a recovered event: a stable hash of
// ("backfill", company, object, entity id, action, update time), so that
// recovering the same window again stores nothing twice.
func MsgID(company int64, object, entityID, action string, updated time.Time) string {
	h := sha256.New()
	for _, s := range []string{"backfill", strconv.FormatInt(company, 10), object, entityID, action, updated.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "bf-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// backfillMeta is meta.backfill: which run recovered the event, over which
// window, from which endpoint, in which format.
type backfillMeta struct {
	Run    string    `json:"run"`
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"`
	Source string    `json:"source"`
	Format string    `json:"format"`
}

type recoveredMeta struct {
	Action    string       `json:"action"`
	Entity    string       `json:"entity"`
	EntityID  string       `json:"entity_id"`
	CompanyID string       `json:"company_id"`
	ID        string       `json:"id"`
	Timestamp string       `json:"timestamp"`
	Version   string       `json:"version"`
	Host      string       `json:"host,omitempty"`
	Attempt   int          `json:"attempt"`
	Backfill  backfillMeta `json:"backfill"`
}

type recoveredBody struct {
	Meta     recoveredMeta   `json:"meta"`
	Data     json.RawMessage `json:"data"`
	Previous json.RawMessage `json:"previous"`
}

var jsonNull = json.RawMessage("null")

// recoveredEvent builds the event of one object in the v2 envelope (SPEC
// §8): data is the object as the API returned it, previous is null, except
// for a delete, which carries the last state in previous and null data.
func recoveredEvent(r *record, t Target, it Item, source string) (*event.Event, error) {
	action := classify(it, r.From)
	company := strconv.FormatInt(r.CompanyID, 10)
	id := MsgID(r.CompanyID, it.Entity, it.ID, action, it.UpdateTime)
	data, prev := it.Data, jsonNull
	if len(data) == 0 {
		data = jsonNull
	}
	if action == actionDelete {
		data, prev = jsonNull, data
	}
	body, err := json.Marshal(recoveredBody{
		Meta: recoveredMeta{
			Action: action, Entity: it.Entity, EntityID: it.ID, CompanyID: company, ID: id,
			Timestamp: it.UpdateTime.UTC().Format(time.RFC3339Nano), Version: "2.0", Host: t.Host(),
			Backfill: backfillMeta{Run: r.ID, From: r.From.UTC(), Until: r.Until.UTC(), Source: source, Format: it.Format},
		},
		Data: data, Previous: prev,
	})
	if err != nil {
		return nil, err
	}
	return &event.Event{
		Action: action, Object: it.Entity, ID: id, CompanyID: company, Version: "2.0", Attempt: 0,
		EntityID: it.ID, Time: it.UpdateTime, Host: t.Host(), Body: body, Backfill: r.ID,
	}, nil
}

// statusEvent is a gap's state as an event on <prefix>.gap.company, the GAP
// as its body.
func statusEvent(r *record, now time.Time) (*event.Event, error) {
	body, err := json.Marshal(r.Gap)
	if err != nil {
		return nil, err
	}
	return &event.Event{
		Action: "gap", Object: "company", ID: "gap-" + r.ID + "-" + strconv.Itoa(r.Seq),
		CompanyID: strconv.FormatInt(r.CompanyID, 10), EntityID: r.ID, Time: now, Body: body, Backfill: r.ID,
	}, nil
}
