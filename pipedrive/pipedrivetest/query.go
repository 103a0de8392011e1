package pipedrivetest

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// badRequest answers 400 with Pipedrive's generic error envelope.
func (x *exchange) badRequest(format string, args ...any) {
	x.json(http.StatusBadRequest, map[string]any{
		"success": false, "error": fmt.Sprintf(format, args...),
		"error_info": "Please check developers.pipedrive.com", "data": nil, "additional_data": nil,
	})
}

// queryInt reads an integer parameter; def when absent.
func queryInt(q url.Values, name string, def int) (int, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s must be an integer", name)
	}
	return n, nil
}

// queryTime reads an RFC 3339 parameter; zero when absent.
func queryTime(q url.Values, name string) (time.Time, error) {
	v := strings.TrimSpace(q.Get(name))
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s must be an RFC 3339 time", name)
	}
	return t.UTC(), nil
}

// inWindow reports whether t is in [since, until); zero bounds are open.
func inWindow(t, since, until time.Time) bool {
	return (since.IsZero() || !t.Before(since)) && (until.IsZero() || t.Before(until))
}

// sortValue normalises a rendered field for ordering: numbers become
// float64, strings stay, anything else (null) sorts first.
func sortValue(v any) any {
	switch n := v.(type) {
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case float64, string:
		return n
	case bool:
		if n {
			return float64(1)
		}
		return float64(0)
	}
	return nil
}

// compareValues orders sortValue results: null < numbers < strings.
func compareValues(a, b any) int {
	rank := func(v any) int {
		switch v.(type) {
		case nil:
			return 0
		case float64:
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch av := a.(type) {
	case float64:
		return cmp.Compare(av, b.(float64))
	case string:
		return cmp.Compare(av, b.(string))
	}
	return 0
}

// offsetPage cuts [start, start+limit) out of n items.
func offsetPage(n, start, limit int) (from, to int, more bool) {
	from = min(max(start, 0), n)
	to = min(from+limit, n)
	return from, to, to < n
}

// pagination is v1's additional_data.pagination.
func pagination(start, limit int, more bool) map[string]any {
	p := map[string]any{"start": start, "limit": limit, "more_items_in_collection": more}
	if more {
		p["next_start"] = start + limit
	}
	return p
}

// v1Sort reads "field ASC" (the first of a comma list) from sort.
func v1Sort(q url.Values, def string) (field string, desc bool) {
	first, _, _ := strings.Cut(q.Get("sort"), ",")
	f := strings.Fields(first)
	if len(f) == 0 {
		return def, false
	}
	return f[0], len(f) > 1 && strings.EqualFold(f[1], "desc")
}
