package pipedrivetest

import (
	"crypto/rand"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// codeLifetime is how long Pipedrive accepts an authorization code.
const codeLifetime = 5 * time.Minute

type oauthState struct {
	clientID     string
	clientSecret string
	lifetime     time.Duration
	codes        map[string]*oauthCode
	access       map[string]oauthAccess
	refresh      map[string]*oauthRefresh
	// consentCompany answers the consent page (0: the lowest id).
	consentCompany int64
}

type oauthCode struct {
	companyID int64
	expires   time.Time
	used      bool
}

type oauthAccess struct {
	companyID int64
	expires   time.Time
}

type oauthRefresh struct {
	companyID int64
	revoked   bool
}

func newOAuthState() oauthState {
	return oauthState{
		lifetime: time.Hour,
		codes:    map[string]*oauthCode{},
		access:   map[string]oauthAccess{},
		refresh:  map[string]*oauthRefresh{},
	}
}

// SetOAuthClient makes the token endpoint accept only these app
// credentials. Until it is called any non-empty Basic credentials pass.
func (s *Server) SetOAuthClient(id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.clientID, s.oauth.clientSecret = id, secret
}

// SetAccessTokenLifetime sets expires_in for tokens issued from now on
// (default 1 h, as Pipedrive).
func (s *Server) SetAccessTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oauth.lifetime = d
}

// IssueCode creates a single-use authorization code for the company, valid
// for 5 minutes of the fake's clock, as if its admin had approved the app.
func (s *Server) IssueCode(companyID int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mustCompany(companyID) == nil {
		return ""
	}
	code := "code-" + rand.Text()
	s.oauth.codes[code] = &oauthCode{companyID: companyID, expires: s.now().Add(codeLifetime)}
	return code
}

// RevokeToken invalidates an API token, OAuth access token or refresh token,
// as uninstalling the app or regenerating the token does.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apiTokens, token)
	if strings.HasPrefix(token, rangeTokenPrefix) {
		s.revoked[token] = true // a company of AddCompanies not used yet
	}
	delete(s.oauth.access, token)
	if r := s.oauth.refresh[token]; r != nil {
		r.revoked = true
	}
}

func oauthError(code, msg string) map[string]any {
	return map[string]any{"success": false, "message": msg, "error": code}
}

func (s *Server) handleToken(x *exchange) {
	if ct, _, _ := mime.ParseMediaType(x.r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		x.json(http.StatusBadRequest, oauthError("invalid_request", "Invalid content type"))
		return
	}
	user, pass, ok := x.r.BasicAuth()
	s.mu.Lock()
	want := s.oauth
	s.mu.Unlock()
	if !ok || user == "" || pass == "" || (want.clientID != "" && (user != want.clientID || pass != want.clientSecret)) {
		x.json(http.StatusUnauthorized, oauthError("invalid_client", "Invalid client credentials"))
		return
	}
	form, err := url.ParseQuery(string(x.body))
	if err != nil {
		x.json(http.StatusBadRequest, oauthError("invalid_request", "Invalid request body"))
		return
	}

	s.mu.Lock()
	var companyID int64
	var refresh string
	switch form.Get("grant_type") {
	case "authorization_code":
		c := s.oauth.codes[form.Get("code")]
		if c == nil || c.used || !s.now().Before(c.expires) || form.Get("redirect_uri") == "" || s.companies[c.companyID] == nil {
			s.mu.Unlock()
			x.json(http.StatusBadRequest, oauthError("invalid_grant", "Invalid grant: authorization code is invalid"))
			return
		}
		c.used = true
		companyID = c.companyID
		refresh = "rt-" + rand.Text()
		s.oauth.refresh[refresh] = &oauthRefresh{companyID: companyID}
	case "refresh_token":
		refresh = form.Get("refresh_token")
		r := s.oauth.refresh[refresh]
		if r == nil || r.revoked || s.companies[r.companyID] == nil {
			s.mu.Unlock()
			x.json(http.StatusBadRequest, oauthError("invalid_grant", "Invalid grant: refresh token is invalid"))
			return
		}
		// Pipedrive returns the same refresh token with a renewed window.
		companyID = r.companyID
	default:
		s.mu.Unlock()
		x.json(http.StatusBadRequest, oauthError("unsupported_grant_type", "Unsupported grant type"))
		return
	}
	access := "at-" + rand.Text()
	lifetime := s.oauth.lifetime
	s.oauth.access[access] = oauthAccess{companyID: companyID, expires: s.now().Add(lifetime)}
	s.mu.Unlock()

	x.json(http.StatusOK, map[string]any{
		"access_token":  access,
		"token_type":    "Bearer",
		"refresh_token": refresh,
		"scope":         "base,admin",
		"expires_in":    int(math.Round(lifetime.Seconds())),
		"api_domain":    s.URL(),
	})
}
