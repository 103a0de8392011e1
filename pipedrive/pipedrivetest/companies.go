package pipedrivetest

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// rangeTokenPrefix starts the API tokens of companies made by AddCompanies.
const rangeTokenPrefix = "token-"

// companyRange is a block of companies made by AddCompanies. They cost no
// memory until a request or a helper first touches one.
type companyRange struct {
	first, last int64
}

// AddCompanies registers n companies with ids firstID … firstID+n-1. Company
// id has domain "company<id>", user 1 and API token RangeToken(id). They are
// materialised lazily, so 100,000 companies cost a few bytes until used.
// Ids already registered keep their settings.
func (s *Server) AddCompanies(n int, firstID int64) {
	if n <= 0 || firstID <= 0 {
		s.errorf("pipedrivetest: AddCompanies: need n > 0 and firstID > 0, got %d, %d", n, firstID)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ranges = append(s.ranges, companyRange{first: firstID, last: firstID + int64(n) - 1})
}

// RangeToken is the API token of company id made by AddCompanies.
func RangeToken(id int64) string { return rangeTokenPrefix + strconv.FormatInt(id, 10) }

// company returns the company with this id, materialising one made by
// AddCompanies on first use; nil when unknown. Callers hold s.mu.
func (s *Server) company(id int64) *company {
	if co := s.companies[id]; co != nil {
		return co
	}
	if !s.inRange(id) {
		return nil
	}
	co := newCompany(Company{ID: id, Domain: "company" + itoa(id), UserID: 1})
	if tok := RangeToken(id); !s.revoked[tok] {
		co.APIToken = tok
		s.apiTokens[tok] = id
	}
	s.companies[id] = co
	return co
}

func (s *Server) inRange(id int64) bool {
	for _, r := range s.ranges {
		if id >= r.first && id <= r.last {
			return true
		}
	}
	return false
}

// rangeCompany resolves a range token of a company nobody touched yet.
// Callers hold s.mu.
func (s *Server) rangeCompany(token string) *company {
	rest, ok := strings.CutPrefix(token, rangeTokenPrefix)
	if !ok || s.revoked[token] {
		return nil
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 || RangeToken(id) != token || s.companies[id] != nil {
		// A materialised company's token is in apiTokens; if it is not,
		// the token was replaced or revoked.
		return nil
	}
	return s.company(id)
}

// Companies returns the ids of the companies that exist so far: those added
// one by one and those of AddCompanies that were used.
func (s *Server) Companies() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.companies))
}
