package pipedrivetest

import "time"

// Assumptions are the fake's answers where Pipedrive's behaviour is
// unconfirmed (the open questions of the backfill research). The zero value
// is the fake's default; each field says what the other choice models.
type Assumptions struct {
	// ListsShowDeleted makes the v2 lists of persons, organizations,
	// activities, products, pipelines and stages, and /v1/notes, return
	// soft-deleted rows (is_deleted: true, active_flag: false) inside the
	// window their update_time falls in. Default: they are left out, as
	// /api/v2/deals leaves deleted deals out unless status=deleted asks for
	// them; a backfill then cannot see those deletes.
	ListsShowDeleted bool
	// RecentsDeleted is how /v1/recents shows a soft-deleted object whose
	// update_time (its delete time) is in range. Default RecentsFlagged.
	RecentsDeleted RecentsDeletedMode
	// RecentsSinceInclusive makes since_timestamp inclusive. Default:
	// changes strictly after it, as the spec words it ("occurred after").
	RecentsSinceInclusive bool
	// RecentsSingleItem answers 400 to a comma-separated items list.
	// Default: the list is honoured, as third-party clients send it.
	RecentsSingleItem bool
	// RecentsMaxLimit caps limit on /v1/recents; a larger one is lowered
	// silently (pagination.limit shows it). Default 500, the cursor
	// endpoints' documented maximum.
	RecentsMaxLimit int
	// RecentsHorizon is how far back /v1/recents reaches. An older
	// since_timestamp is answered with the last RecentsHorizon only (the
	// echo in additional_data.since_timestamp stays as sent). Default 30
	// days, as Airbyte, Fivetran and Singer report.
	RecentsHorizon time.Duration
	// RecentsOldSinceFails answers 400 to a since_timestamp older than the
	// horizon instead of truncating silently.
	RecentsOldSinceFails bool
	// RecentsUserAsArray wraps each user's data in a one-element array, as
	// recents did before a 2022 change (Singer, Airbyte).
	RecentsUserAsArray bool
	// ArchivedLeadsUpdatedSince makes /v1/leads/archived honour
	// updated_since. Default: ignored, as its spec lists no such parameter.
	ArchivedLeadsUpdatedSince bool
	// NoDailyHeaders leaves x-daily-ratelimit-token-limit and -remaining
	// out of answers, as some live responses reportedly do. Default: sent
	// on every answer.
	NoDailyHeaders bool
}

// RecentsDeletedMode is how /v1/recents shows deleted objects.
type RecentsDeletedMode int

const (
	// RecentsFlagged lists them in v1 shape with their markers: deleted:
	// true and active: false for deals, active_flag: false for the rest,
	// is_deleted: true for users, active: false for pipelines.
	RecentsFlagged RecentsDeletedMode = iota
	// RecentsNullData lists them as {"item": …, "id": …, "data": null}, the
	// unexplained entries Airbyte met.
	RecentsNullData
	// RecentsHidden leaves them out.
	RecentsHidden
)

const (
	defaultRecentsMaxLimit = 500
	defaultRecentsHorizon  = 30 * 24 * time.Hour
)

// SetAssumptions replaces the fake's assumptions.
func (s *Server) SetAssumptions(a Assumptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assume = a
}

// assumptions returns the current ones with defaults filled in. Callers hold
// s.mu.
func (s *Server) assumptions() Assumptions {
	a := s.assume
	if a.RecentsMaxLimit <= 0 {
		a.RecentsMaxLimit = defaultRecentsMaxLimit
	}
	if a.RecentsHorizon <= 0 {
		a.RecentsHorizon = defaultRecentsHorizon
	}
	return a
}
