package gateway

import "bytes"

// The JSON grammar under the meta scan: a validating scanner over the body
// that hands each object member to a callback and keeps byte views of
// scalar values, as strict as encoding/json (FuzzScan holds it to that).

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

type scanner struct {
	b     []byte
	i     int
	depth int
}

func (sc *scanner) ws() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

func (sc *scanner) peek() byte {
	sc.ws()
	if sc.i < len(sc.b) {
		return sc.b[sc.i]
	}
	return 0
}

// object scans {"key": value, …}; member is called with each key and must
// consume its value. A nil member skips the values (no call per member).
func (sc *scanner) object(member func(key []byte, esc bool) error) error {
	if sc.depth++; sc.depth > maxDepth {
		return errSyntax
	}
	defer func() { sc.depth-- }()
	sc.i++ // '{'
	if sc.peek() == '}' {
		sc.i++
		return nil
	}
	for {
		if sc.peek() != '"' {
			return errSyntax
		}
		key, esc, err := sc.str()
		if err != nil {
			return err
		}
		if sc.peek() != ':' {
			return errSyntax
		}
		sc.i++
		sc.ws()
		if member == nil {
			if _, err := sc.value(); err != nil {
				return err
			}
		} else if err := member(key, esc); err != nil {
			return err
		}
		switch sc.peek() {
		case ',':
			sc.i++
		case '}':
			sc.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// value scans any JSON value and returns a view of it.
func (sc *scanner) value() (rawValue, error) {
	switch c := sc.peek(); {
	case c == '"':
		s, esc, err := sc.str()
		return rawValue{b: s, kind: kindString, esc: esc}, err
	case c == '{':
		start := sc.i
		err := sc.object(nil) // most of a webhook body: data and previous
		return rawValue{b: sc.b[start:sc.i], kind: kindObject}, err
	case c == '[':
		start := sc.i
		err := sc.array()
		return rawValue{b: sc.b[start:sc.i], kind: kindArray}, err
	case c == '-' || c >= '0' && c <= '9':
		start := sc.i
		err := sc.number()
		return rawValue{b: sc.b[start:sc.i], kind: kindNumber}, err
	case c == 't':
		start := sc.i
		err := sc.literal("true")
		return rawValue{b: sc.b[start:sc.i], kind: kindBool}, err
	case c == 'f':
		start := sc.i
		err := sc.literal("false")
		return rawValue{b: sc.b[start:sc.i], kind: kindBool}, err
	case c == 'n':
		return rawValue{kind: kindNull}, sc.literal("null")
	}
	return rawValue{}, errSyntax
}

func (sc *scanner) array() error {
	if sc.depth++; sc.depth > maxDepth {
		return errSyntax
	}
	defer func() { sc.depth-- }()
	sc.i++ // '['
	if sc.peek() == ']' {
		sc.i++
		return nil
	}
	for {
		if _, err := sc.value(); err != nil {
			return err
		}
		switch sc.peek() {
		case ',':
			sc.i++
		case ']':
			sc.i++
			return nil
		default:
			return errSyntax
		}
	}
}

// strSpecial marks the bytes that end the fast run through a string: the
// closing quote, a backslash, and the control bytes JSON forbids.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str scans a string at sc.i and returns its contents (escapes kept).
func (sc *scanner) str() ([]byte, bool, error) {
	sc.i++ // opening quote
	b, start, esc := sc.b, sc.i, false
	i := sc.i
	for {
		for i < len(b) && !strSpecial[b[i]] {
			i++
		}
		if i >= len(b) {
			return nil, false, errSyntax
		}
		switch b[i] {
		case '"':
			sc.i = i + 1
			return b[start:i], esc, nil
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return nil, false, errSyntax
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return nil, false, errSyntax
				}
				i += 6
			default:
				return nil, false, errSyntax
			}
		default: // a control byte
			return nil, false, errSyntax
		}
	}
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *scanner) number() error {
	b := sc.b
	if sc.i < len(b) && b[sc.i] == '-' {
		sc.i++
	}
	switch {
	case sc.i < len(b) && b[sc.i] == '0':
		sc.i++
	case sc.i < len(b) && b[sc.i] >= '1' && b[sc.i] <= '9':
		sc.digits()
	default:
		return errSyntax
	}
	if sc.i < len(b) && b[sc.i] == '.' {
		sc.i++
		if !sc.digits() {
			return errSyntax
		}
	}
	if sc.i < len(b) && (b[sc.i] == 'e' || b[sc.i] == 'E') {
		sc.i++
		if sc.i < len(b) && (b[sc.i] == '+' || b[sc.i] == '-') {
			sc.i++
		}
		if !sc.digits() {
			return errSyntax
		}
	}
	return nil
}

func (sc *scanner) digits() bool {
	start := sc.i
	for sc.i < len(sc.b) && sc.b[sc.i] >= '0' && sc.b[sc.i] <= '9' {
		sc.i++
	}
	return sc.i > start
}

func (sc *scanner) literal(lit string) error {
	if !bytes.HasPrefix(sc.b[sc.i:], []byte(lit)) {
		return errSyntax
	}
	sc.i += len(lit)
	return nil
}
