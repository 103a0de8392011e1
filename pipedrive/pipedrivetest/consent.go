package pipedrivetest

import (
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// The consent page: GET /oauth/authorize shows what Pipedrive shows an
// installing user (the app asks for access to a company, Allow or Deny);
// its form posts back to /oauth/authorize, which sends the browser to the
// redirect_uri with a code (Allow) or error=user_denied (Deny), and the
// state, as Pipedrive does. The user is taken to be signed in to the
// company set with SetConsentCompany, else to the lowest company id.

// SetConsentCompany sets the company whose admin answers the consent page.
func (s *Server) SetConsentCompany(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.consentCompany = id
}

var consentTemplate = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Allow access · fake Pipedrive</title></head>
<body>
<main>
<h1>Allow {{.ClientID}} to access your Pipedrive company?</h1>
<p>You are signed in as an admin of company {{.CompanyID}} ({{.Domain}}).</p>
<form method="post" action="/oauth/authorize">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="company_id" value="{{.CompanyID}}">
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</main>
</body>
</html>
`))

func (s *Server) handleAuthorize(x *exchange) {
	var q url.Values
	if x.r.Method == http.MethodPost {
		var err error
		if q, err = url.ParseQuery(string(x.body)); err != nil {
			x.json(http.StatusBadRequest, oauthError("invalid_request", "Invalid request body"))
			return
		}
	} else {
		q = x.r.URL.Query()
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	s.mu.Lock()
	wantClient := s.oauth.clientID
	companyID := s.oauth.consentCompany
	if companyID == 0 {
		if ids := slices.Sorted(maps.Keys(s.companies)); len(ids) > 0 {
			companyID = ids[0]
		}
	}
	co := s.companies[companyID]
	s.mu.Unlock()
	switch {
	case err != nil || redirect.Scheme == "" || redirect.Host == "":
		x.json(http.StatusBadRequest, oauthError("invalid_request", "Invalid redirect_uri"))
		return
	case q.Get("client_id") == "" || (wantClient != "" && q.Get("client_id") != wantClient):
		x.json(http.StatusBadRequest, oauthError("invalid_client", "Unknown client_id"))
		return
	case co == nil:
		x.json(http.StatusBadRequest, oauthError("invalid_request", "No company to sign in to"))
		return
	}
	if x.r.Method == http.MethodGet {
		x.writeHeaders("text/html; charset=utf-8")
		x.w.WriteHeader(http.StatusOK)
		x.status = http.StatusOK
		_ = consentTemplate.Execute(x.w, map[string]any{
			"ClientID": q.Get("client_id"), "RedirectURI": redirect.String(), "State": q.Get("state"),
			"CompanyID": companyID, "Domain": co.Domain,
		})
		return
	}
	back := redirect.Query()
	if q.Get("decision") == "allow" {
		id, _ := strconv.ParseInt(q.Get("company_id"), 10, 64)
		back.Set("code", s.IssueCode(id))
	} else {
		back.Set("error", "user_denied")
	}
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	redirect.RawQuery = back.Encode()
	x.writeHeaders("text/html; charset=utf-8")
	x.w.Header().Set("Location", redirect.String())
	x.w.WriteHeader(http.StatusFound)
	x.status = http.StatusFound
}
