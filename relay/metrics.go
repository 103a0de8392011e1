package relay

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// streamStats is the stream's fill level as the monitor last read it; the
// gauges report it without asking NATS at scrape time.
type streamStats struct {
	bytes, msgs int64
	// limit is what fills up: STREAM_MAX_BYTES, else the embedded server's
	// JetStream store limit; -1 when there is none the gateway knows of.
	limit int64
}

// registerMetrics makes the stream gauges: bytes and messages held, and the
// limit they grow towards (so that an alert can say "80 % full").
func (r *Relay) registerMetrics() error {
	if r.meter == nil {
		return nil
	}
	m := r.meter.Meter("github.com/pipedrive-gateway/pipedrive-gateway/relay")
	size, err := m.Int64ObservableGauge("pipedrive_gateway.stream.size", metric.WithUnit("By"),
		metric.WithDescription("Bytes the stream holds."))
	if err != nil {
		return fmt.Errorf("failed to create stream metrics: %w", err)
	}
	msgs, err := m.Int64ObservableGauge("pipedrive_gateway.stream.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Messages the stream holds."))
	if err != nil {
		return fmt.Errorf("failed to create stream metrics: %w", err)
	}
	lim, err := m.Int64ObservableGauge("pipedrive_gateway.stream.limit", metric.WithUnit("By"),
		metric.WithDescription("Bytes the stream may hold: STREAM_MAX_BYTES (then the oldest events are discarded), else the embedded server's JetStream store limit (then publishes fail). Absent when there is no limit."))
	if err != nil {
		return fmt.Errorf("failed to create stream metrics: %w", err)
	}
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("stream", r.cfg.Name)))
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := r.health.stats.Load()
		if s == nil {
			return nil
		}
		o.ObserveInt64(size, s.bytes, attrs)
		o.ObserveInt64(msgs, s.msgs, attrs)
		if s.limit > 0 {
			o.ObserveInt64(lim, s.limit, attrs)
		}
		return nil
	}, size, msgs, lim)
	if err != nil {
		return fmt.Errorf("failed to register stream metrics: %w", err)
	}
	return nil
}
