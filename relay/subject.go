package relay

import "strings"

// SubjectCovers reports whether every subject that subject matches is also
// matched by filter (both may hold the wildcards * and >): whether a stream
// listening on filter captures everything published on subject.
func SubjectCovers(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, ft := range f {
		if ft == ">" {
			return i < len(s) // > needs at least one more token
		}
		if i >= len(s) || s[i] == ">" {
			return false
		}
		if ft != "*" && ft != s[i] {
			return false
		}
	}
	return len(f) == len(s)
}

// SubjectsOverlap reports whether some subject matches both a and b.
func SubjectsOverlap(a, b string) bool {
	at, bt := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		switch {
		case i == len(at) || i == len(bt):
			return len(at) == len(bt)
		case at[i] == ">" || bt[i] == ">":
			return true
		case at[i] != "*" && bt[i] != "*" && at[i] != bt[i]:
			return false
		}
	}
}
