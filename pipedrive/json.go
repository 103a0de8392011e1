package pipedrive

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Pipedrive's JSON is loosely typed: ids come as numbers or strings,
// is_active as 0/1 or a boolean, dates in two formats. The flex types accept
// all of those. Their errors never quote the value, which may be a secret.

var errNotInteger = errors.New("pipedrive: expected an integer")

// flexInt is an integer sent as a number, numeric string, boolean or null.
type flexInt struct {
	v   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	switch s {
	case "null", `""`:
		*f = flexInt{}
		return nil
	case "true":
		*f = flexInt{v: 1, set: true}
		return nil
	case "false":
		*f = flexInt{v: 0, set: true}
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return errNotInteger
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*f = flexInt{v: n, set: true}
		return nil
	}
	if x, err := strconv.ParseFloat(s, 64); err == nil && x == math.Trunc(x) && math.Abs(x) < 1<<53 {
		*f = flexInt{v: int64(x), set: true}
		return nil
	}
	return errNotInteger
}

// flexString is a string that may arrive as a number, a boolean or null.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errors.New("pipedrive: invalid string")
		}
		*f = flexString(s)
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return errors.New("pipedrive: expected a string")
	default:
		*f = flexString(b) // number or boolean, verbatim
	}
	return nil
}

// flexTime is a timestamp in ISO 8601 or "YYYY-MM-DD HH:MM:SS" (UTC), or null.
// A value that is present but unreadable still counts as present, so an odd
// remove_time keeps a webhook from looking active.
type flexTime struct {
	t       time.Time
	present bool
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func (f *flexTime) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	v := strings.TrimSpace(string(s))
	if v == "" {
		*f = flexTime{}
		return nil
	}
	*f = flexTime{present: true}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			f.t = t.UTC()
			return nil
		}
	}
	return nil
}

func (f flexTime) ptr() *time.Time {
	if !f.present {
		return nil
	}
	t := f.t
	return &t
}

// wireTime is how Pipedrive writes timestamps in webhook objects.
const wireTime = "2006-01-02T15:04:05.000Z"

type webhookWire struct {
	ID               flexInt    `json:"id"`
	CompanyID        flexInt    `json:"company_id"`
	OwnerID          flexInt    `json:"owner_id"`
	UserID           flexInt    `json:"user_id"`
	EventAction      flexString `json:"event_action"`
	EventObject      flexString `json:"event_object"`
	SubscriptionURL  flexString `json:"subscription_url"`
	Version          flexString `json:"version"`
	IsActive         flexInt    `json:"is_active"`
	AddTime          flexTime   `json:"add_time"`
	RemoveTime       flexTime   `json:"remove_time"`
	Type             flexString `json:"type"`
	HTTPAuthUser     flexString `json:"http_auth_user"`
	HTTPAuthPassword flexString `json:"http_auth_password"`
	RemoveReason     flexString `json:"remove_reason"`
	LastDeliveryTime flexTime   `json:"last_delivery_time"`
	LastHTTPStatus   flexInt    `json:"last_http_status"`
	AdminID          flexInt    `json:"admin_id"`
	Name             flexString `json:"name"`
}

// UnmarshalJSON reads Pipedrive's webhook object, tolerating loose types.
func (w *Webhook) UnmarshalJSON(b []byte) error {
	var x webhookWire
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*w = Webhook{
		ID:               x.ID.v,
		CompanyID:        x.CompanyID.v,
		OwnerID:          x.OwnerID.v,
		UserID:           x.UserID.v,
		EventAction:      string(x.EventAction),
		EventObject:      string(x.EventObject),
		SubscriptionURL:  string(x.SubscriptionURL),
		Version:          string(x.Version),
		IsActive:         int(x.IsActive.v),
		AddTime:          x.AddTime.t,
		RemoveTime:       x.RemoveTime.ptr(),
		Type:             string(x.Type),
		HTTPAuthUser:     string(x.HTTPAuthUser),
		HTTPAuthPassword: string(x.HTTPAuthPassword),
		RemoveReason:     string(x.RemoveReason),
		LastDeliveryTime: x.LastDeliveryTime.ptr(),
		AdminID:          x.AdminID.v,
		Name:             string(x.Name),
	}
	if x.LastHTTPStatus.set {
		s := int(x.LastHTTPStatus.v)
		w.LastHTTPStatus = &s
	}
	return nil
}

// MarshalJSON writes Pipedrive's wire format, password included; it exists
// for fakes and fixtures, not for logs.
func (w Webhook) MarshalJSON() ([]byte, error) {
	type out struct {
		ID               int64   `json:"id"`
		CompanyID        int64   `json:"company_id"`
		OwnerID          int64   `json:"owner_id"`
		UserID           int64   `json:"user_id"`
		EventAction      string  `json:"event_action"`
		EventObject      string  `json:"event_object"`
		SubscriptionURL  string  `json:"subscription_url"`
		Version          string  `json:"version"`
		IsActive         int     `json:"is_active"`
		AddTime          *string `json:"add_time"`
		RemoveTime       *string `json:"remove_time"`
		Type             string  `json:"type"`
		HTTPAuthUser     *string `json:"http_auth_user"`
		HTTPAuthPassword *string `json:"http_auth_password"`
		RemoveReason     *string `json:"remove_reason"`
		LastDeliveryTime *string `json:"last_delivery_time"`
		LastHTTPStatus   *int    `json:"last_http_status"`
		AdminID          int64   `json:"admin_id"`
		Name             string  `json:"name"`
	}
	var add *time.Time
	if !w.AddTime.IsZero() {
		add = &w.AddTime
	}
	return json.Marshal(out{
		ID: w.ID, CompanyID: w.CompanyID, OwnerID: w.OwnerID, UserID: w.UserID,
		EventAction: w.EventAction, EventObject: w.EventObject,
		SubscriptionURL: w.SubscriptionURL, Version: w.Version, IsActive: w.IsActive,
		AddTime: timeString(add), RemoveTime: timeString(w.RemoveTime), Type: w.Type,
		HTTPAuthUser: nullable(w.HTTPAuthUser), HTTPAuthPassword: nullable(w.HTTPAuthPassword),
		RemoveReason: nullable(w.RemoveReason), LastDeliveryTime: timeString(w.LastDeliveryTime),
		LastHTTPStatus: w.LastHTTPStatus, AdminID: w.AdminID, Name: w.Name,
	})
}

func timeString(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(wireTime)
	return &s
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// flexBool is a boolean sent as true/false, 0/1, their string forms, or
// null (then unset).
type flexBool struct {
	v   bool
	set bool
}

func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		*f = flexBool{}
		return nil // an object where a flag was expected: not a flag
	}
	switch strings.ToLower(strings.TrimSpace(string(s))) {
	case "true", "1":
		*f = flexBool{v: true, set: true}
	case "false", "0":
		*f = flexBool{v: false, set: true}
	default:
		*f = flexBool{}
	}
	return nil
}
