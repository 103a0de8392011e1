package config

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
)

// ByteSize is a size such as "512KiB", "1MiB", "1MB" or "65536", in bytes.
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

// EnvDecode implements envconfig.Decoder.
func (b *ByteSize) EnvDecode(v string) error {
	s := strings.ToLower(strings.TrimSpace(v))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return fmt.Errorf("want a size such as 512KiB or 1MiB, got %q", v)
	}
	*b = ByteSize(n * mult)
	return nil
}

// OnOff is a switch written on or off (true/false and 1/0 are accepted too).
type OnOff bool

// EnvDecode implements envconfig.Decoder.
func (o *OnOff) EnvDecode(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "1", "yes":
		*o = true
	case "off", "false", "0", "no":
		*o = false
	default:
		return fmt.Errorf("want on or off, got %q", v)
	}
	return nil
}

// StateKey is the 32-byte AES key that encrypts stored secrets; empty when
// not set.
type StateKey []byte

// EnvDecode implements envconfig.Decoder. The value is never echoed back in
// an error: it is a secret.
func (k *StateKey) EnvDecode(v string) error {
	if v == "" {
		return nil
	}
	key, err := parseStateKey(v)
	if err != nil {
		return err
	}
	*k = key
	return nil
}

func parseStateKey(v string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	switch {
	case err != nil:
		return nil, errors.New("not standard base64 (the value is not shown)")
	case len(key) != 32:
		return nil, fmt.Errorf("want 32 bytes after base64 decoding, got %d", len(key))
	}
	return key, nil
}

// String hides the key from logs and fmt.
func (k StateKey) String() string { return "[redacted]" }

// StateKeys is a comma-separated list of state keys.
type StateKeys []StateKey

// EnvDecode implements envconfig.Decoder.
func (ks *StateKeys) EnvDecode(v string) error {
	*ks = nil
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for i, part := range strings.Split(v, ",") {
		key, err := parseStateKey(part)
		if err != nil {
			return fmt.Errorf("entry %d: %v", i+1, err)
		}
		*ks = append(*ks, key)
	}
	return nil
}

// String hides the keys from logs and fmt.
func (ks StateKeys) String() string { return fmt.Sprintf("[%d redacted]", len(ks)) }

// decode fills a Config from lookuper. go-envconfig stops at the first value
// it cannot decode; to report every bad variable at once, decode notes the
// one that failed, hides it (so its default applies) and decodes again, in
// the order of the Config tree. err is for failures that are not a value's.
func decode(ctx context.Context, lookuper envconfig.Lookuper) (c *Config, problems []error, err error) {
	hidden := map[string]bool{}
	for {
		c = &Config{}
		err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: c, Lookuper: hiding{lookuper, hidden}})
		if err == nil {
			return c, problems, nil
		}
		name, typ, ok := failedVar(reflect.TypeOf(*c), err)
		if !ok || hidden[name] {
			return nil, nil, err
		}
		hidden[name] = true
		value, _ := lookuper.Lookup(name)
		problems = append(problems, fmt.Errorf("%s: %s", name, decodeProblem(typ, value, err)))
	}
}

// hiding is a lookuper that reports the hidden variables as unset.
type hiding struct {
	envconfig.Lookuper
	hidden map[string]bool
}

func (h hiding) Lookup(key string) (string, bool) {
	if h.hidden[key] {
		return "", false
	}
	return h.Lookuper.Lookup(key)
}

// failedVar follows the field names that go-envconfig puts in front of a
// decode error ("Stream: MaxAge: …") to the variable of that field.
func failedVar(t reflect.Type, err error) (name string, typ reflect.Type, ok bool) {
	rest := err.Error()
	for t.Kind() == reflect.Struct {
		field, tail, found := strings.Cut(rest, ": ")
		if !found {
			return "", nil, false
		}
		f, exists := t.FieldByName(field)
		if !exists {
			return "", nil, false
		}
		if tag := f.Tag.Get("env"); tag != "" {
			name, _, _ := strings.Cut(tag, ",")
			return name, f.Type, true
		}
		t, rest = f.Type, tail
	}
	return "", nil, false
}

// decodeProblem says what a variable of type typ wants. The types of this
// package say it themselves; their messages never show a secret.
func decodeProblem(typ reflect.Type, value string, err error) string {
	switch typ {
	case reflect.TypeFor[time.Duration]():
		return fmt.Sprintf("want a duration such as 5s or 168h, got %q", value)
	case reflect.TypeFor[int]():
		return fmt.Sprintf("want an integer, got %q", value)
	case reflect.TypeFor[slog.Level]():
		return fmt.Sprintf("want debug, info, warn or error, got %q", value)
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err.Error()
}
