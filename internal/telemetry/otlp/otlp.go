// Package otlp is the gateway's span exporter. The gateway exports spans
// with it rather than with the official otlptracehttp and otlptracegrpc
// exporters, which link grpc-go, grpc-gateway and genproto into the binary.
// It speaks OTLP/HTTP with protobuf bodies and OTLP/gRPC over net/http's
// HTTP/2, and encodes the messages with protowire. It is configured by the
// standard OTEL_EXPORTER_OTLP_* variables (see readOTLPConfig).
package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

const (
	grpcExportPath  = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	httpTracesPath  = "/v1/traces"
	envPrefix       = "OTEL_EXPORTER_OTLP_"
	envTracesPrefix = "OTEL_EXPORTER_OTLP_TRACES_"

	defaultOTLPTimeout = 10 * time.Second
	// maxResponseBody bounds what is read of a collector's answer.
	maxResponseBody = 1 << 20
)

// Exporter is an sdktrace.SpanExporter sending OTLP over HTTP or gRPC.
type Exporter struct {
	cfg       otlpConfig
	header    http.Header // sent with every request
	transport *http.Transport
	client    *http.Client

	// Retry policy: exponential back-off with jitter from backoffInitial,
	// growing to backoffMax, giving up once retryFor has passed.
	backoffInitial time.Duration
	backoffMax     time.Duration
	retryFor       time.Duration

	// stopped ends with Shutdown, cancelling exports under way.
	stopped context.Context
	stop    context.CancelFunc
}

var errExporterShutdown = errors.New("OTLP trace exporter is shut down")

// New builds the exporter from the OTEL_EXPORTER_OTLP_*
// variables read with getenv; grpc picks OTLP/gRPC over OTLP/HTTP.
// userAgent names the sender.
func New(getenv func(string) string, grpc bool, userAgent string) (*Exporter, error) {
	cfg, err := readOTLPConfig(getenv, grpc)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       cfg.tls,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		Protocols:             new(http.Protocols),
	}
	h := http.Header{}
	for k, v := range cfg.headers {
		h[k] = v
	}
	if h.Get("User-Agent") == "" {
		h.Set("User-Agent", userAgent)
	}
	if grpc {
		// gRPC is HTTP/2 only: negotiated by ALPN over TLS, with prior
		// knowledge in plaintext. A proxy is used for TLS endpoints
		// only, through CONNECT.
		if cfg.tls != nil {
			tr.Protocols.SetHTTP2(true)
			tr.Proxy = http.ProxyFromEnvironment
		} else {
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
		// Detect a dead connection rather than wait on it.
		tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}
		h.Set("Content-Type", "application/grpc")
		h.Set("Te", "trailers")
		h.Set("Grpc-Accept-Encoding", "gzip")
		if cfg.gzip {
			h.Set("Grpc-Encoding", "gzip")
		}
	} else {
		tr.Protocols.SetHTTP1(true)
		tr.Protocols.SetHTTP2(true)
		tr.Proxy = http.ProxyFromEnvironment
		h.Set("Content-Type", "application/x-protobuf")
		if cfg.gzip {
			h.Set("Content-Encoding", "gzip")
		}
	}
	stopped, stop := context.WithCancel(context.Background())
	return &Exporter{
		cfg:            cfg,
		header:         h,
		transport:      tr,
		client:         &http.Client{Transport: tr},
		backoffInitial: 5 * time.Second,
		backoffMax:     30 * time.Second,
		retryFor:       time.Minute,
		stopped:        stopped,
		stop:           stop,
	}, nil
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// ExportSpans sends spans in one request, retrying what the protocol says
// is transient until it succeeds, ctx ends, or the retry time runs out. A
// partial success is reported to the OpenTelemetry error handler and is
// not an error.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if e.stopped.Err() != nil {
		return errExporterShutdown
	}
	msg := appendTraceRequest(nil, spans)
	if len(msg) == 0 {
		return nil
	}
	body, err := e.payload(msg)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.stopped, cancel)()

	send := e.postHTTP
	if e.cfg.grpc {
		send = e.postGRPC
	}
	resp, err := e.retry(ctx, func(ctx context.Context) ([]byte, error) { return send(ctx, body) })
	if err != nil {
		if e.stopped.Err() != nil {
			err = fmt.Errorf("%w: %w", errExporterShutdown, err)
		}
		return fmt.Errorf("OTLP trace export to %s: %w", e.cfg.url, err)
	}
	if len(resp) > 0 {
		rejected, reason, err := decodePartialSuccess(resp)
		switch {
		case err != nil:
			otel.Handle(fmt.Errorf("OTLP trace export to %s: %w", e.cfg.url, err))
		case rejected != 0 || reason != "":
			if reason == "" {
				reason = "no reason given"
			}
			otel.Handle(fmt.Errorf("OTLP partial success from %s: %d spans rejected: %s", e.cfg.url, rejected, reason))
		}
	}
	return nil
}

// payload compresses the encoded request if configured and, for gRPC,
// frames it: a compressed flag byte and the big-endian length.
func (e *Exporter) payload(msg []byte) ([]byte, error) {
	var buf bytes.Buffer
	if e.cfg.grpc {
		buf.Write(make([]byte, 5))
	}
	if e.cfg.gzip {
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(msg); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	} else {
		buf.Write(msg)
	}
	b := buf.Bytes()
	if e.cfg.grpc {
		if e.cfg.gzip {
			b[0] = 1
		}
		binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-5))
	}
	return b, nil
}

// retryableError is a failure the protocol says may pass; after is the
// least wait the collector asked for (Retry-After, RetryInfo), if any.
type retryableError struct {
	err   error
	after time.Duration
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// retry calls attempt, each call bounded by the configured timeout, until
// it succeeds or fails for good. Between calls it waits an exponential
// back-off with jitter, or longer when the collector asks; it gives up
// when the next call would start after ctx's deadline or after retryFor.
func (e *Exporter) retry(ctx context.Context, attempt func(context.Context) ([]byte, error)) ([]byte, error) {
	start := time.Now()
	interval := e.backoffInitial
	for n := 1; ; n++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if e.cfg.timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, e.cfg.timeout)
		}
		resp, err := attempt(actx)
		cancel()
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (attempt %d: %w)", ctx.Err(), n, err)
		}
		var re *retryableError
		if !errors.As(err, &re) {
			return nil, err
		}
		// Jitter of ±50 % around the interval, as the official exporters;
		// a collector's delay is honoured, but never shortens the wait.
		wait := max(time.Duration(float64(interval)*(0.5+rand.Float64())), re.after)
		interval = min(time.Duration(float64(interval)*1.5), e.backoffMax)
		if time.Since(start)+wait > e.retryFor {
			return nil, fmt.Errorf("giving up after %d attempts in %s: %w", n, time.Since(start).Round(time.Millisecond), err)
		}
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return nil, fmt.Errorf("giving up after %d attempts, the next would come after the export deadline: %w", n, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (attempt %d: %w)", ctx.Err(), n, err)
		case <-t.C:
		}
	}
}

// postHTTP makes one OTLP/HTTP attempt and returns the body of a
// protobuf success response.
func (e *Exporter) postHTTP(ctx context.Context, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = e.header.Clone()
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, transportError(err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
		if readErr != nil || !strings.EqualFold(strings.TrimSpace(ct), "application/x-protobuf") {
			// Accepted; what the collector added cannot be read.
			return nil, nil
		}
		return data, nil
	case code == http.StatusTooManyRequests, code == http.StatusBadGateway,
		code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		re := &retryableError{err: fmt.Errorf("collector answered %s: %s", resp.Status, excerpt(data))}
		re.after = retryAfter(resp.Header.Get("Retry-After"))
		return nil, re
	default:
		return nil, fmt.Errorf("collector answered %s: %s", resp.Status, excerpt(data))
	}
}

// transportError classes a failed round trip: certificate and TLS
// handshake failures, ours or the collector's (a TLS alert, such as a
// client certificate refused), are permanent; other network failures
// (refused, reset, timed out) may pass.
func transportError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return err
	}
	var (
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	if errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &alert) ||
		errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) {
		return err
	}
	return &retryableError{err: err}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, int64(time.Duration(1<<63-1)/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// excerpt gives the start of a response body for an error message.
func excerpt(b []byte) string {
	const limit = 256
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

// Shutdown makes later exports fail, stops those under way and closes idle
// connections.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.stop()
	e.transport.CloseIdleConnections()
	return ctx.Err()
}
