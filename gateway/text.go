package gateway

// Checks of the values that become subjects and headers, and of the path.

// canonicalID reports whether s is a company id in canonical decimal: no
// sign, no leading zero, no spaces, within int64. Any other spelling of an
// id would reach consumers as a different string for the same company.
func canonicalID(s string) bool {
	const maxInt64 = "9223372036854775807"
	if s == "" || len(s) > len(maxInt64) || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) < len(maxInt64) || s <= maxInt64
}

// atoi parses a non-negative decimal integer of at most 9 digits without
// allocating (strconv wants a string).
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func subjectToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// headerSafe keeps payload values that become NATS headers from breaking
// the header block: visible ASCII only, bounded length.
func headerSafe[T string | []byte](s T) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// pipedriveHost reports whether host is <domain>.pipedrive.com, the only
// meta.host that may become ce-source: any other value would let a sender
// name a source of its choosing.
func pipedriveHost[T string | []byte](host T) bool {
	const suffix = ".pipedrive.com"
	n := len(host) - len(suffix)
	if n < 1 || n > 63 || string(host[n:]) != suffix || host[0] == '-' || host[n-1] == '-' {
		return false
	}
	for i := 0; i < n; i++ {
		if c := host[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
