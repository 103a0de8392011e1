package gateway

import (
	"encoding/json"
	"errors"
	"unicode"
	"unicode/utf8"
)

// The webhook body is scanned once by hand instead of json.Unmarshal: the
// scan validates the whole document and keeps byte views of the few meta
// fields the gateway routes and deduplicates by, so that a request costs
// no allocations for fields it never uses. FuzzScan checks it against
// encoding/json.

// kind is the JSON type of a scanned value.
type kind uint8

const (
	absent kind = iota
	kindString
	kindNumber
	kindNull
	kindBool
	kindObject
	kindArray
)

// rawValue is one scanned JSON value: a view into the body.
type rawValue struct {
	b    []byte // string contents without quotes, or the value's text
	kind kind
	esc  bool // string holds escapes
}

// present reports a value other than null, absent or the empty string.
func (v rawValue) present() bool {
	return v.kind != absent && v.kind != kindNull && !(v.kind == kindString && len(v.b) == 0)
}

// Indexes of the meta keys the gateway reads.
const (
	mAction = iota
	mEntity
	mEntityID
	mVersion
	mAttempt
	mTimestamp
	mObject
	mV
	mTimestampMicro
	mTimestampMilli
	mID
	mCompanyID
	mWebhookID
	mHost
	nMeta
)

var metaKeys = [nMeta]string{"action", "entity", "entity_id", "version", "attempt", "timestamp", "object", "v",
	"timestamp_micro", "timestamp_milli", "id", "company_id", "webhook_id", "host"}

// Indexes of the top-level keys the gateway reads, and of those that
// consumers read (the entity before and after), which must not be
// ambiguous either.
const (
	tMeta = iota
	tV
	tEvent
	tRetry
	tData
	tCurrent
	tPrevious
	nTop
)

var topKeys = [nTop]string{"meta", "v", "event", "retry", "data", "current", "previous"}

// scanned is what the scan keeps of a body.
type scanned struct {
	top [nTop]rawValue
	m   [nMeta]rawValue
	// ambiguous names a key that readers of the body can take two ways:
	// a read key given twice, or one that differs from a read key only in
	// letter case or escapes (encoding/json matches struct fields
	// case-insensitively and merges repeated objects; map-based parsers
	// keep the last copy; streaming ones often the first).
	ambiguous string
}

var (
	errSyntax    = errors.New("body is not valid JSON")
	errNotObject = errors.New("body is not a JSON object")
)

// scanBody validates body as one JSON object and fills s.
func scanBody(body []byte, s *scanned) error {
	sc := scanner{b: body}
	sc.ws()
	if sc.i >= len(sc.b) || sc.b[sc.i] != '{' {
		if _, err := sc.value(); err != nil {
			return err
		}
		if sc.ws(); sc.i != len(sc.b) {
			return errSyntax
		}
		return errNotObject
	}
	var seenTop [nTop]bool
	err := sc.object(func(key []byte, keyEsc bool) error {
		i := s.lookup(topKeys[:], seenTop[:], key, keyEsc)
		if i == tMeta && sc.peek() == '{' {
			start := sc.i
			err := s.scanMeta(&sc)
			s.top[i] = rawValue{b: sc.b[start:sc.i], kind: kindObject}
			return err
		}
		v, err := sc.value()
		if i >= 0 {
			s.top[i] = v
		}
		return err
	})
	if err != nil {
		return err
	}
	sc.ws()
	if sc.i != len(sc.b) {
		return errSyntax
	}
	return nil
}

// scanMeta scans the meta object at sc.i, keeping the keys the gateway
// uses.
func (s *scanned) scanMeta(sc *scanner) error {
	var seen [nMeta]bool
	return sc.object(func(key []byte, keyEsc bool) error {
		i := s.lookup(metaKeys[:], seen[:], key, keyEsc)
		v, err := sc.value()
		if i >= 0 {
			s.m[i] = v
		}
		return err
	})
}

// lookup returns the index of key among keys, or -1. A key that is a read
// key only after folding case or decoding escapes, or a read key seen
// before, marks the body ambiguous (and is not used).
func (s *scanned) lookup(keys []string, seen []bool, key []byte, esc bool) int {
	if !esc {
		for i := range keys {
			if keys[i] == string(key) {
				if seen[i] {
					s.markAmbiguous(keys[i])
					return -1
				}
				seen[i] = true
				return i
			}
		}
	}
	name := unescapedKey(key, esc)
	for i := range keys {
		if foldEqual(keys[i], name) {
			s.markAmbiguous(keys[i])
			return -1
		}
	}
	return -1
}

func (s *scanned) markAmbiguous(key string) {
	if s.ambiguous == "" {
		s.ambiguous = key
	}
}

// foldEqual reports whether name equals the lower-case ASCII key except
// for letter case, as encoding/json matches a key to a struct field: ASCII
// case, and the Unicode letters that fold to ASCII (the Kelvin sign is
// "k", the long s is "s").
func foldEqual(key string, name []byte) bool {
	// Every rune that folds to an ASCII letter takes at least one byte.
	if len(name) < len(key) || name[0] < utf8.RuneSelf && name[0]|0x20 != key[0] {
		return false
	}
	j := 0
	for i := 0; i < len(name); j++ {
		r, n := rune(name[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRune(name[i:])
			r = unicode.ToLower(r)
		}
		if j >= len(key) || unicode.ToUpper(r) != unicode.ToUpper(rune(key[j])) {
			return false
		}
		i += n
	}
	return j == len(key)
}

// unescapedKey decodes a key that holds escapes ("m\u0065ta" is "meta",
// as encoding/json reads it). Plain keys are returned as they are.
func unescapedKey(key []byte, esc bool) []byte {
	if esc {
		return unescape(key)
	}
	return key
}

// unescape decodes the contents of a JSON string that holds escapes.
func unescape(b []byte) []byte {
	var s string
	if json.Unmarshal(append(append([]byte{'"'}, b...), '"'), &s) != nil {
		return b
	}
	return []byte(s)
}
