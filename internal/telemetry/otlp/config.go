package otlp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// otlpConfig is what the OTEL_EXPORTER_OTLP_* variables say.
type otlpConfig struct {
	grpc bool
	// url is where requests go: the /v1/traces URL for OTLP/HTTP, the
	// TraceService/Export method for gRPC.
	url string
	// tls is nil for a plaintext endpoint.
	tls     *tls.Config
	headers http.Header
	// timeout bounds each export attempt; 0 leaves only the caller's
	// context.
	timeout time.Duration
	gzip    bool
}

// otlpEnv reads OTEL_EXPORTER_OTLP_TRACES_<name>, else
// OTEL_EXPORTER_OTLP_<name>, and says which variable gave the value.
type otlpEnv func(string) string

func (getenv otlpEnv) lookup(name string) (value, variable string) {
	if v := strings.TrimSpace(getenv(envTracesPrefix + name)); v != "" {
		return v, envTracesPrefix + name
	}
	return strings.TrimSpace(getenv(envPrefix + name)), envPrefix + name
}

// readOTLPConfig resolves the trace exporter's settings with the semantics
// of the OpenTelemetry specification, each OTEL_EXPORTER_OTLP_TRACES_*
// variable replacing its OTEL_EXPORTER_OTLP_* counterpart:
//
//   - ENDPOINT: for http/protobuf, /v1/traces is appended to the path of
//     the generic endpoint while the TRACES one is used as is; for grpc the
//     path is ignored. An http:// endpoint is plaintext (for gRPC, HTTP/2
//     with prior knowledge), https:// is TLS, and a bare host:port is TLS
//     unless INSECURE is true.
//   - INSECURE: true or false.
//   - HEADERS: k=v pairs separated by commas, values percent-decoded.
//   - TIMEOUT: milliseconds per export attempt (default 10000; 0 for no
//     bound beyond the caller's).
//   - COMPRESSION: gzip or none.
//   - CERTIFICATE: PEM file of the CAs to trust instead of the system's.
//   - CLIENT_CERTIFICATE and CLIENT_KEY: PEM files for mutual TLS.
//
// A value it cannot use is an error naming the variable.
func readOTLPConfig(getenv func(string) string, grpc bool) (otlpConfig, error) {
	env := otlpEnv(getenv)
	cfg := otlpConfig{grpc: grpc, timeout: defaultOTLPTimeout}

	insecure := false
	if v, name := env.lookup("INSECURE"); v != "" {
		switch {
		case strings.EqualFold(v, "true"):
			insecure = true
		case strings.EqualFold(v, "false"):
		default:
			return cfg, fmt.Errorf("%s: want true or false, got %q", name, v)
		}
	}

	endpoint, name := env.lookup("ENDPOINT")
	if endpoint == "" {
		return cfg, fmt.Errorf("%sENDPOINT: not set", envPrefix)
	}
	u, secure, err := parseEndpoint(endpoint, insecure)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case grpc:
		u.Path, u.RawPath, u.RawQuery = grpcExportPath, "", ""
	case name == envTracesPrefix+"ENDPOINT":
		// The signal's own endpoint is the URL to post to.
		if u.Path == "" {
			u.Path, u.RawPath = "/", ""
		}
	default:
		u.Path = strings.TrimSuffix(u.Path, "/") + httpTracesPath
		if u.RawPath != "" {
			u.RawPath = strings.TrimSuffix(u.RawPath, "/") + httpTracesPath
		}
	}
	cfg.url = u.String()

	if v, name := env.lookup("HEADERS"); v != "" {
		if cfg.headers, err = parseOTLPHeaders(v); err != nil {
			return cfg, fmt.Errorf("%s: %w", name, err)
		}
	}

	if v, name := env.lookup("TIMEOUT"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
			return cfg, fmt.Errorf("%s: want a whole number of milliseconds, got %q", name, v)
		}
		cfg.timeout = time.Duration(ms) * time.Millisecond
	}

	if v, name := env.lookup("COMPRESSION"); v != "" {
		switch strings.ToLower(v) {
		case "gzip":
			cfg.gzip = true
		case "none":
		default:
			return cfg, fmt.Errorf("%s: want gzip or none, got %q", name, v)
		}
	}

	// The TLS files are read, and so checked, even for a plaintext
	// endpoint, where they are not used.
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if v, name := env.lookup("CERTIFICATE"); v != "" {
		pem, err := os.ReadFile(v)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", name, err)
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("%s: no PEM certificate in %s", name, v)
		}
	}
	certFile, certName := env.lookup("CLIENT_CERTIFICATE")
	keyFile, keyName := env.lookup("CLIENT_KEY")
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cfg, fmt.Errorf("%s, %s: %w", certName, keyName, err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	case certFile != "":
		return cfg, fmt.Errorf("%s is set without %s", certName, keyName)
	case keyFile != "":
		return cfg, fmt.Errorf("%s is set without %s", keyName, certName)
	}
	if secure {
		cfg.tls = tlsCfg
	}
	return cfg, nil
}

// parseEndpoint reads an http:// or https:// URL, or a host:port without
// scheme, which is secure unless insecure is set.
func parseEndpoint(v string, insecure bool) (u *url.URL, secure bool, err error) {
	if !strings.Contains(v, "://") {
		u, err = url.Parse("//" + v)
		if err != nil {
			return nil, false, err
		}
		u.Scheme = "https"
		if insecure {
			u.Scheme = "http"
		}
	} else if u, err = url.Parse(v); err != nil {
		return nil, false, err
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, false, fmt.Errorf("want an http:// or https:// URL or host:port, got %q", v)
	}
	if u.Host == "" {
		return nil, false, fmt.Errorf("no host in %q", v)
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	return u, u.Scheme == "https", nil
}

// parseOTLPHeaders reads OTEL_EXPORTER_OTLP_HEADERS: comma-separated
// key=value pairs, values percent-encoded, whitespace around either
// ignored. Empty items are skipped.
func parseOTLPHeaders(v string) (http.Header, error) {
	h := http.Header{}
	for item := range strings.SplitSeq(v, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("want key=value, got %q", item)
		}
		if !validHeaderName(k) {
			return nil, fmt.Errorf("invalid header name %q", k)
		}
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", k, err)
		}
		dec = strings.TrimSpace(dec)
		if strings.ContainsAny(dec, "\r\n\x00") {
			return nil, fmt.Errorf("header %s: value has a control character", k)
		}
		h.Set(k, dec)
	}
	return h, nil
}

// validHeaderName reports whether k is an HTTP token (RFC 9110).
func validHeaderName(k string) bool {
	for _, c := range []byte(k) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return k != ""
}
