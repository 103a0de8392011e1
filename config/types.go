package config

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// decodeErrorer is implemented by the setting types below. They keep their
// decode error instead of returning it, because go-envconfig stops at the
// first error and we want to report all of them at once.
type decodeErrorer interface{ decodeError() error }

// Duration is a time.Duration setting such as "5s" or "168h".
type Duration struct {
	D   time.Duration
	err error
}

// EnvDecode implements envconfig.Decoder.
func (d *Duration) EnvDecode(v string) error {
	d.D, d.err = time.ParseDuration(strings.TrimSpace(v))
	if d.err != nil {
		d.err = fmt.Errorf("want a duration such as 5s or 168h, got %q", v)
	}
	return nil
}

func (d Duration) decodeError() error { return d.err }

// Int is an integer setting.
type Int struct {
	V   int
	err error
}

// EnvDecode implements envconfig.Decoder.
func (i *Int) EnvDecode(v string) error {
	i.V, i.err = strconv.Atoi(strings.TrimSpace(v))
	if i.err != nil {
		i.err = fmt.Errorf("want an integer, got %q", v)
	}
	return nil
}

func (i Int) decodeError() error { return i.err }

// ByteSize is a size such as "512KiB", "1MiB", "1MB" or "65536".
type ByteSize struct {
	N   int64
	err error
}

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
		b.err = fmt.Errorf("want a size such as 512KiB or 1MiB, got %q", v)
		return nil
	}
	b.N, b.err = n*mult, nil
	return nil
}

func (b ByteSize) decodeError() error { return b.err }

// LogLevel is debug, info, warn or error.
type LogLevel struct {
	Level slog.Level
	err   error
}

// EnvDecode implements envconfig.Decoder.
func (l *LogLevel) EnvDecode(v string) error {
	l.err = l.Level.UnmarshalText([]byte(strings.TrimSpace(v)))
	if l.err != nil {
		l.err = fmt.Errorf("want debug, info, warn or error, got %q", v)
	}
	return nil
}

func (l LogLevel) decodeError() error { return l.err }

// StateKey is the 32-byte AES key that encrypts stored secrets.
type StateKey struct {
	key []byte
	err error
}

// EnvDecode implements envconfig.Decoder. The value is never echoed back in
// an error: it is a secret.
func (k *StateKey) EnvDecode(v string) error {
	if v == "" {
		return nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	switch {
	case err != nil:
		k.err = fmt.Errorf("not standard base64 (the value is not shown)")
	case len(key) != 32:
		k.err = fmt.Errorf("want 32 bytes after base64 decoding, got %d", len(key))
	default:
		k.key = key
	}
	return nil
}

func (k StateKey) decodeError() error { return k.err }

// Set reports whether a valid key was given.
func (k StateKey) Set() bool { return len(k.key) == 32 }

// Bytes returns the key.
func (k StateKey) Bytes() []byte { return k.key }

// NewStateKey wraps a key generated or read elsewhere (the embedded default).
func NewStateKey(key []byte) StateKey { return StateKey{key: key} }

// String hides the key from logs and fmt.
func (k StateKey) String() string { return "[redacted]" }

// collectDecodeErrors walks the config tree and reports each recorded decode
// error under the name of its environment variable.
func collectDecodeErrors(v reflect.Value, bad func(name, format string, args ...any)) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if de, ok := fv.Interface().(decodeErrorer); ok {
			if err := de.decodeError(); err != nil {
				name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				bad(name, "%v", err)
			}
			continue
		}
		if fv.Kind() == reflect.Struct {
			collectDecodeErrors(fv, bad)
		}
	}
}
