package gateway

import (
	"strconv"
	"time"
)

// Pipedrive has sent event times in several forms over the years (SPEC §3):
// RFC 3339 with any fraction or offset, "YYYY-MM-DD HH:MM:SS" in UTC (v2
// product events until 2026-04), Unix seconds and Unix milliseconds, each as
// a JSON number or a string. None of them is a reason to refuse an event: a
// time the gateway cannot read leaves ce-time unset, and the dedupe id
// hashes the raw text instead.

// unit is what an integer timestamp counts.
type unit int

const (
	secondsOrMillis unit = iota // meta.timestamp: milliseconds above 10^11
	millis                      // v1 meta.timestamp_milli
	micros                      // v1 meta.timestamp_micro
)

// millisAbove separates seconds from milliseconds: 10^11 seconds is the
// year 5138, 10^11 milliseconds is March 1973.
const millisAbove = 100_000_000_000

// lastInstant is the end of the year 9999: later times have no RFC 3339
// form.
var lastInstant = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// readTime reads a timestamp value; ok is false when it is absent or in no
// form the gateway knows.
func readTime(v rawValue, u unit) (t time.Time, ok bool) {
	b := v.bytes()
	if len(b) == 0 {
		return time.Time{}, false
	}
	if b[0] >= '0' && b[0] <= '9' && len(b) <= 19 && allDigits(b) {
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		switch {
		case u == micros:
			t = time.UnixMicro(n)
		case u == millis || n > millisAbove:
			t = time.UnixMilli(n)
		default:
			t = time.Unix(n, 0)
		}
		if t.After(lastInstant) {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	if v.kind != kindString {
		return time.Time{}, false
	}
	if err := t.UnmarshalText(b); err == nil { // RFC 3339
		return t.UTC(), true
	}
	t, err := time.ParseInLocation(time.DateTime, string(b), time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// stamp is the text a dedupe id hashes for a timestamp: the instant as a
// Unix number with every digit it was sent with (seconds when whole, else
// microseconds, else RFC 3339 with nanoseconds), so that 1669304389 and
// "2022-11-24T15:39:49.000Z" agree and two edits a millisecond apart do
// not; or the raw text when the time cannot be read. Seconds and
// microseconds are what earlier versions hashed for v1 and for v2 user
// seconds, so those ids stay the same across an upgrade.
func stamp(v rawValue, u unit) string {
	t, ok := readTime(v, u)
	switch {
	case ok && t.Nanosecond() == 0:
		return strconv.FormatInt(t.Unix(), 10)
	case ok && t.Nanosecond()%1000 == 0:
		return strconv.FormatInt(t.UnixMicro(), 10)
	case ok:
		return t.Format(time.RFC3339Nano)
	case !v.present():
		return ""
	}
	return "raw:" + string(v.text())
}
