package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// OTLP/gRPC is a unary call over HTTP/2: the request body is one
// length-prefixed message, the answer is a length-prefixed message
// followed by the grpc-status and grpc-message trailers, or, when the call
// fails before any message, those fields alone in the response headers.

// gRPC status codes (google.golang.org/grpc/codes).
const (
	grpcOK                = 0
	grpcCancelled         = 1
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcAborted           = 10
	grpcOutOfRange        = 11
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcDataLoss          = 15
	grpcUnauthenticated   = 16
)

var grpcCodeNames = [...]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
	"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

// grpcStatusError is a call that ended with a status other than OK.
type grpcStatusError struct {
	code int
	msg  string
}

func (e *grpcStatusError) Error() string {
	name := "code " + strconv.Itoa(e.code)
	if e.code >= 0 && e.code < len(grpcCodeNames) {
		name = grpcCodeNames[e.code]
	}
	if e.msg == "" {
		return "gRPC status " + name
	}
	return "gRPC status " + name + ": " + e.msg
}

// postGRPC makes one TraceService/Export call with the framed request
// body and returns the response message.
func (e *Exporter) postGRPC(ctx context.Context, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = e.header.Clone()
	if d, ok := ctx.Deadline(); ok {
		req.Header.Set("Grpc-Timeout", grpcTimeout(time.Until(d)))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// What grpc-go reports as UNAVAILABLE.
		return nil, transportError(err)
	}
	// The trailers come after the whole body.
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()

	status := resp.Trailer
	if status.Get("Grpc-Status") == "" {
		status = resp.Header // a trailers-only response
	}
	code, err := strconv.Atoi(status.Get("Grpc-Status"))
	switch {
	case err == nil:
	case readErr != nil:
		// The stream broke before its end.
		return nil, &retryableError{err: fmt.Errorf("reading the gRPC response: %w", readErr)}
	case resp.StatusCode != http.StatusOK:
		return nil, grpcError(&grpcStatusError{code: grpcCodeOfHTTP(resp.StatusCode), msg: "HTTP " + resp.Status + ": " + excerpt(data)}, nil)
	default:
		return nil, &grpcStatusError{code: grpcInternal, msg: "no grpc-status in the response"}
	}
	if code != grpcOK {
		st := &grpcStatusError{code: code, msg: decodeGRPCMessage(status.Get("Grpc-Message"))}
		return nil, grpcError(st, status.Values("Grpc-Status-Details-Bin"))
	}
	if readErr != nil {
		// Accepted; the answer cannot be read.
		return nil, nil
	}
	msg, err := grpcMessage(data, resp.Header.Get("Grpc-Encoding"))
	if err != nil {
		return nil, nil
	}
	return msg, nil
}

// grpcError classes a failed call as the OTLP specification does:
// CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and
// DATA_LOSS may pass, RESOURCE_EXHAUSTED only when the server says when to
// retry (google.rpc.RetryInfo in grpc-status-details-bin), whose delay is
// honoured; other codes are permanent.
func grpcError(st *grpcStatusError, details []string) error {
	delay, asked := grpcRetryDelay(details)
	switch st.code {
	case grpcCancelled, grpcDeadlineExceeded, grpcAborted, grpcOutOfRange, grpcUnavailable, grpcDataLoss:
	case grpcResourceExhausted:
		if !asked {
			return st
		}
	default:
		return st
	}
	return &retryableError{err: st, after: delay}
}

// grpcCodeOfHTTP maps the HTTP status of a response without grpc-status,
// as gRPC does.
func grpcCodeOfHTTP(status int) int {
	switch status {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return grpcUnavailable
	}
	return grpcUnknown
}

// grpcTimeout formats a grpc-timeout header: at most eight digits and a
// unit, rounded up.
func grpcTimeout(d time.Duration) string {
	if d <= 0 {
		return "1n"
	}
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}, {time.Hour, "H"}} {
		v := d / u.d
		if d%u.d != 0 {
			v++
		}
		if v <= 99999999 {
			return strconv.FormatInt(int64(v), 10) + u.unit
		}
	}
	return "99999999H"
}

// decodeGRPCMessage undoes the percent-encoding of grpc-message, leaving
// malformed escapes as they are.
func decodeGRPCMessage(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// grpcMessage reads the first length-prefixed message of a response body.
func grpcMessage(data []byte, encoding string) ([]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if len(data) < 5 {
		return nil, errors.New("truncated gRPC message")
	}
	n := binary.BigEndian.Uint32(data[1:5])
	if uint64(len(data)-5) < uint64(n) {
		return nil, errors.New("truncated gRPC message")
	}
	msg := data[5 : 5+n]
	if data[0]&1 == 0 {
		return msg, nil
	}
	if !strings.EqualFold(encoding, "gzip") {
		return nil, fmt.Errorf("gRPC message compressed with %q", encoding)
	}
	zr, err := gzip.NewReader(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, maxResponseBody))
}

// grpcRetryDelay finds a google.rpc.RetryInfo among the details of a
// google.rpc.Status (grpc-status-details-bin) and returns its delay.
func grpcRetryDelay(details []string) (time.Duration, bool) {
	for _, v := range details {
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			continue
		}
		var delay time.Duration
		var found bool
		// google.rpc.Status: details = 3 (repeated google.protobuf.Any).
		_ = walkFields(b, func(num protowire.Number, typ protowire.Type, a []byte) error {
			if num != 3 || typ != protowire.BytesType || found {
				return nil
			}
			var typeURL string
			var value []byte
			// google.protobuf.Any: type_url = 1, value = 2.
			_ = walkFields(a, func(num protowire.Number, typ protowire.Type, v []byte) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					typeURL = string(v)
				case num == 2 && typ == protowire.BytesType:
					value = v
				}
				return nil
			})
			if !strings.HasSuffix(typeURL, "/google.rpc.RetryInfo") {
				return nil
			}
			found = true
			// google.rpc.RetryInfo: retry_delay = 1 (google.protobuf.Duration:
			// seconds = 1, nanos = 2).
			return walkFields(value, func(num protowire.Number, typ protowire.Type, d []byte) error {
				if num != 1 || typ != protowire.BytesType {
					return nil
				}
				return walkFields(d, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if typ != protowire.VarintType {
						return nil
					}
					x, _ := protowire.ConsumeVarint(v)
					switch num {
					case 1:
						delay += time.Duration(int64(x)) * time.Second
					case 2:
						delay += time.Duration(int32(x))
					}
					return nil
				})
			})
		})
		if found {
			return max(delay, 0), true
		}
	}
	return 0, false
}
