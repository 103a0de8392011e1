package pipedrivetest

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *Server) handleMe(x *exchange) {
	s.mu.Lock()
	c := x.co.Company
	s.mu.Unlock()
	x.json(http.StatusOK, map[string]any{"success": true, "data": map[string]any{
		"id":              c.UserID,
		"name":            "User " + itoa(c.UserID),
		"email":           "user" + itoa(c.UserID) + "@" + c.Domain + ".example",
		"company_id":      c.ID,
		"company_domain":  c.Domain,
		"company_name":    c.Domain,
		"company_country": "EE",
		"is_you":          true,
		"active_flag":     true,
		"timezone_name":   "Europe/Tallinn",
	}})
}

func (s *Server) handleList(x *exchange) {
	s.mu.Lock()
	hooks := x.co.sortedHooks()
	s.mu.Unlock()
	x.json(http.StatusOK, map[string]any{"success": true, "status": "ok", "data": hooks})
}

var (
	actionsV2 = map[string]bool{"create": true, "change": true, "delete": true, "*": true}
	actionsV1 = map[string]bool{"added": true, "updated": true, "deleted": true, "merged": true, "*": true}
	objects   = map[string]bool{
		"activity": true, "deal": true, "lead": true, "note": true, "organization": true,
		"person": true, "pipeline": true, "product": true, "stage": true, "user": true, "*": true,
	}
)

// createInput is the POST /v1/webhooks body, read loosely as Pipedrive does.
type createInput map[string]any

func (in createInput) str(k string) string {
	switch v := in[k].(type) {
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	}
	return ""
}

func readCreateInput(r *http.Request, body []byte) (createInput, bool) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, false
		}
		in := createInput{}
		for k := range q {
			in[k] = q.Get(k)
		}
		return in, true
	}
	in := createInput{}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&in); err != nil {
		return nil, false
	}
	return in, true
}

// validate applies the documented rules and returns field → messages.
func (in createInput) validate() map[string][]string {
	errs := map[string][]string{}
	version := in.str("version")
	if _, sent := in["version"]; !sent {
		version = "2.0" // Pipedrive's default since 2025-03-17
	}
	if version != "1.0" && version != "2.0" {
		errs["version"] = []string{"must be one of 1.0, 2.0"}
	}
	u := in.str("subscription_url")
	if u == "" {
		errs["subscription_url"] = []string{"is required"}
	} else if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" ||
		strings.HasSuffix(strings.ToLower(p.Hostname()), "pipedrive.com") {
		errs["subscription_url"] = []string{"invalid or non-reachable URL"}
	}
	actions := actionsV2
	if version == "1.0" {
		actions = actionsV1
	}
	switch a := in.str("event_action"); {
	case a == "":
		errs["event_action"] = []string{"is required"}
	case !actions[a]:
		errs["event_action"] = []string{"invalid value for version " + version}
	}
	switch o := in.str("event_object"); {
	case o == "":
		errs["event_object"] = []string{"is required"}
	case !objects[o] && !(version == "1.0" && o == "activityType"):
		errs["event_object"] = []string{"invalid value"}
	}
	switch n := in.str("name"); {
	case n == "":
		errs["name"] = []string{"is required"}
	case len(n) > 255:
		errs["name"] = []string{"must be at most 255 characters"}
	}
	if v, sent := in["user_id"]; sent && v != nil {
		if _, err := strconv.ParseInt(in.str("user_id"), 10, 64); err != nil {
			errs["user_id"] = []string{"must be an integer"}
		}
	}
	return errs
}

func (s *Server) handleCreate(x *exchange) {
	in, ok := readCreateInput(x.r, x.body)
	if !ok {
		x.json(http.StatusBadRequest, map[string]any{"status": "error", "success": false, "errors": map[string][]string{"body": {"invalid JSON"}}})
		return
	}
	if errs := in.validate(); len(errs) > 0 {
		x.json(http.StatusBadRequest, map[string]any{"status": "error", "success": false, "errors": errs})
		return
	}
	version := in.str("version")
	if version == "" {
		version = "2.0"
	}

	s.mu.Lock()
	co := x.co
	if len(co.hooks) >= webhookLimit {
		s.mu.Unlock()
		x.json(http.StatusUnprocessableEntity, limitBody)
		return
	}
	userID := co.UserID
	if n, err := strconv.ParseInt(in.str("user_id"), 10, 64); err == nil && n > 0 {
		userID = n
	}
	typ := "general"
	if x.bearer {
		typ = "application" // created by an OAuth app
	}
	w := pipedrive.Webhook{
		ID:               s.newHookID(),
		CompanyID:        co.ID,
		OwnerID:          co.UserID,
		UserID:           userID,
		EventAction:      in.str("event_action"),
		EventObject:      in.str("event_object"),
		SubscriptionURL:  in.str("subscription_url"),
		Version:          version,
		IsActive:         1,
		AddTime:          s.now().UTC().Truncate(time.Millisecond),
		Type:             typ,
		HTTPAuthUser:     in.str("http_auth_user"),
		HTTPAuthPassword: in.str("http_auth_password"),
		AdminID:          co.UserID,
		Name:             in.str("name"),
	}
	s.storeHook(co, w)
	s.mu.Unlock()
	x.json(http.StatusCreated, map[string]any{"success": true, "status": "ok", "data": w})
}

func (s *Server) handleDelete(x *exchange) {
	id, err := strconv.ParseInt(x.rt.id, 10, 64)
	s.mu.Lock()
	owner, found := s.hookOwner[id]
	if err != nil || !found || owner != x.co.ID {
		s.mu.Unlock()
		x.json(http.StatusNotFound, notFoundBody)
		return
	}
	// Only the app that created an application webhook may delete it.
	if x.co.hooks[id].Type == "application" && !x.bearer {
		s.mu.Unlock()
		x.json(http.StatusForbidden, map[string]any{"success": false, "message": "Forbidden"})
		return
	}
	delete(x.co.hooks, id)
	delete(s.hookOwner, id)
	s.mu.Unlock()
	x.json(http.StatusOK, map[string]any{"status": "ok", "success": true})
}
