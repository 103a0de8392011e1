package pipedrivetest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ControlHandler is a small HTTP API to drive the fake from outside a test,
// for local trials (cmd/fakepipedrive). It is unauthenticated: bind the fake
// to localhost. Routes:
//
//	POST /_fake/companies/{id}/objects      {"op":"put|change|archive|unarchive|delete","kind":"deal","id":7,"fields":{…}}
//	GET  /_fake/companies/{id}/objects      ?kind=deal
//	GET  /_fake/companies/{id}/webhooks     (Pipedrive's wire format, passwords included)
//	POST /_fake/companies/{id}/webhooks/{wid}/delete   delete behind the gateway's back
//	POST /_fake/companies/{id}/budget       {"tokens":N}
//	GET  /_fake/calls                       calls and tokens per route, in-flight gauge
//	POST /_fake/calls/reset
//	POST /_fake/latency                     {"latency":"250ms"}
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_fake/companies/{id}/objects", s.ctlApply)
	mux.HandleFunc("GET /_fake/companies/{id}/objects", s.ctlObjects)
	mux.HandleFunc("GET /_fake/companies/{id}/webhooks", s.ctlWebhooks)
	mux.HandleFunc("POST /_fake/companies/{id}/webhooks/{wid}/delete", s.ctlDeleteWebhook)
	mux.HandleFunc("POST /_fake/companies/{id}/budget", s.ctlBudget)
	mux.HandleFunc("GET /_fake/calls", s.ctlCalls)
	mux.HandleFunc("POST /_fake/calls/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetCalls()
		s.ResetMaxInFlight()
		ctlJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST /_fake/latency", s.ctlLatency)
	return mux
}

// ctlObject is the body of POST …/objects.
type ctlObject struct {
	Op Op `json:"op"`
	Object
}

func (s *Server) ctlApply(w http.ResponseWriter, r *http.Request) {
	id, ok := ctlCompany(w, r, s)
	if !ok {
		return
	}
	var in ctlObject
	if !ctlDecode(w, r, &in) {
		return
	}
	o, err := s.Apply(id, in.Op, in.Object)
	switch {
	case errors.Is(err, ErrNoObject):
		ctlError(w, http.StatusNotFound, err)
	case err != nil:
		ctlError(w, http.StatusBadRequest, err)
	default:
		ctlJSON(w, http.StatusOK, o)
	}
}

func (s *Server) ctlObjects(w http.ResponseWriter, r *http.Request) {
	if id, ok := ctlCompany(w, r, s); ok {
		objs := s.Objects(id, r.URL.Query().Get("kind"))
		if objs == nil {
			objs = []Object{}
		}
		ctlJSON(w, http.StatusOK, objs)
	}
}

func (s *Server) ctlWebhooks(w http.ResponseWriter, r *http.Request) {
	if id, ok := ctlCompany(w, r, s); ok {
		ctlJSON(w, http.StatusOK, s.Webhooks(id))
	}
}

func (s *Server) ctlDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	if _, ok := ctlCompany(w, r, s); !ok {
		return
	}
	wid, err := strconv.ParseInt(r.PathValue("wid"), 10, 64)
	if err != nil || !s.DeleteBehindBack(wid) {
		ctlError(w, http.StatusNotFound, errors.New("no such webhook"))
		return
	}
	ctlJSON(w, http.StatusOK, map[string]bool{"deleted": true})
}

func (s *Server) ctlBudget(w http.ResponseWriter, r *http.Request) {
	id, ok := ctlCompany(w, r, s)
	var in struct {
		Tokens int `json:"tokens"`
	}
	if !ok || !ctlDecode(w, r, &in) {
		return
	}
	s.SetDailyBudget(id, in.Tokens)
	limit, remaining := s.DailyBudget(id)
	ctlJSON(w, http.StatusOK, map[string]int{"limit": limit, "remaining": remaining})
}

func (s *Server) ctlCalls(w http.ResponseWriter, _ *http.Request) {
	total := Usage{}
	usage := s.Usage()
	for _, u := range usage {
		total.Calls += u.Calls
		total.Tokens += u.Tokens
	}
	ctlJSON(w, http.StatusOK, map[string]any{
		"routes": usage, "total": total, "in_flight": s.InFlight(), "max_in_flight": s.MaxInFlight(),
	})
}

func (s *Server) ctlLatency(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Latency string `json:"latency"`
	}
	if !ctlDecode(w, r, &in) {
		return
	}
	d, err := time.ParseDuration(in.Latency)
	if err != nil || d < 0 {
		ctlError(w, http.StatusBadRequest, errors.New("latency must be a duration such as 250ms"))
		return
	}
	s.SetLatency(d)
	ctlJSON(w, http.StatusOK, map[string]string{"latency": d.String()})
}

// ctlCompany reads {id} and checks the company exists.
func ctlCompany(w http.ResponseWriter, r *http.Request, s *Server) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err == nil {
		s.mu.Lock()
		ok := s.company(id) != nil
		s.mu.Unlock()
		if ok {
			return id, true
		}
	}
	ctlError(w, http.StatusNotFound, errors.New("no such company"))
	return 0, false
}

func ctlDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		ctlError(w, http.StatusBadRequest, errors.New("body must be one JSON object of the documented form"))
		return false
	}
	return true
}

func ctlError(w http.ResponseWriter, status int, err error) {
	ctlJSON(w, status, map[string]string{"error": err.Error()})
}

func ctlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
