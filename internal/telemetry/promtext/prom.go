// Package promtext serves /metrics: the Prometheus text exposition format (version
// 0.0.4) of the OTel metrics, named by the OpenTelemetry-to-Prometheus
// compatibility rules (dots to underscores, a unit suffix, _total on
// counters), followed by the Go runtime's and the process's own metrics
// under their usual go_* and process_* names. Written here rather than by
// the Prometheus client libraries, which would link a protobuf runtime and
// its registries into the binary for what is a few hundred lines of text.
package promtext

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// textContentType is what Prometheus expects of the text format.
const textContentType = "text/plain; version=0.0.4; charset=utf-8"

// family is one metric family of the exposition.
type family struct {
	name, help, typ string
	samples         []sample
}

// sample is one line: a name suffix (_bucket, _sum, …), its labels and
// the value. extra is the le or quantile label, written last.
type sample struct {
	suffix   string
	labels   []label
	extra    label
	value    float64
	sortKeys string
}

type label struct{ name, value string }

// promHandler serves the OTel metrics read from reader, and the runtime's.
type promHandler struct {
	reader *sdkmetric.ManualReader
}

func (h promHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(r.Context(), &rm); err != nil {
		http.Error(w, "cannot collect the metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	fams := otelFamilies(&rm)
	fams = append(fams, runtimeFamilies()...)
	slices.SortFunc(fams, func(a, b *family) int { return cmp.Compare(a.name, b.name) })

	w.Header().Set("Content-Type", textContentType)
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 32<<10)
	writeFamilies(bw, fams)
	_ = bw.Flush()
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return true
		}
	}
	return false
}

// otelFamilies converts what the SDK collected. Metrics of the same name
// from several scopes share one family (the first description wins).
func otelFamilies(rm *metricdata.ResourceMetrics) []*family {
	byName := map[string]*family{}
	var out []*family
	get := func(name, help, typ string) *family {
		if f, ok := byName[name]; ok {
			return f
		}
		f := &family{name: name, help: help, typ: typ}
		byName[name] = f
		out = append(out, f)
		return f
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				addSum(get, m, d.IsMonotonic, d.DataPoints)
			case metricdata.Sum[float64]:
				addSum(get, m, d.IsMonotonic, d.DataPoints)
			case metricdata.Gauge[int64]:
				addPoints(get(promName(m.Name, m.Unit, kindGauge), m.Description, "gauge"), d.DataPoints)
			case metricdata.Gauge[float64]:
				addPoints(get(promName(m.Name, m.Unit, kindGauge), m.Description, "gauge"), d.DataPoints)
			case metricdata.Histogram[int64]:
				addHistogram(get(promName(m.Name, m.Unit, kindHistogram), m.Description, "histogram"), d.DataPoints)
			case metricdata.Histogram[float64]:
				addHistogram(get(promName(m.Name, m.Unit, kindHistogram), m.Description, "histogram"), d.DataPoints)
			}
			// Exponential histograms and summaries are not produced by the
			// instruments and views Setup configures.
		}
	}
	for _, f := range out {
		slices.SortStableFunc(f.samples, func(a, b sample) int { return cmp.Compare(a.sortKeys, b.sortKeys) })
	}
	return out
}

func addSum[N int64 | float64](get func(name, help, typ string) *family, m metricdata.Metrics, monotonic bool, pts []metricdata.DataPoint[N]) {
	if monotonic {
		addPoints(get(promName(m.Name, m.Unit, kindCounter), m.Description, "counter"), pts)
		return
	}
	addPoints(get(promName(m.Name, m.Unit, kindGauge), m.Description, "gauge"), pts)
}

func addPoints[N int64 | float64](f *family, pts []metricdata.DataPoint[N]) {
	for _, p := range pts {
		ls := labelsOf(p.Attributes)
		f.samples = append(f.samples, sample{labels: ls, value: float64(p.Value), sortKeys: sortKey(ls)})
	}
}

func addHistogram[N int64 | float64](f *family, pts []metricdata.HistogramDataPoint[N]) {
	for _, p := range pts {
		ls := labelsOf(p.Attributes)
		key := sortKey(ls)
		var cum uint64
		for i, b := range p.Bounds {
			if i < len(p.BucketCounts) {
				cum += p.BucketCounts[i]
			}
			f.samples = append(f.samples, sample{suffix: "_bucket", labels: ls, extra: label{"le", formatFloat(b)}, value: float64(cum), sortKeys: key})
		}
		f.samples = append(f.samples,
			sample{suffix: "_bucket", labels: ls, extra: label{"le", "+Inf"}, value: float64(p.Count), sortKeys: key},
			sample{suffix: "_sum", labels: ls, value: float64(p.Sum), sortKeys: key},
			sample{suffix: "_count", labels: ls, value: float64(p.Count), sortKeys: key})
	}
}

// labelsOf turns attributes into labels, sorted by name; keys that
// sanitise to the same name are joined with ";" (the compatibility rule).
func labelsOf(set attribute.Set) []label {
	out := make([]label, 0, set.Len())
	for it := set.Iter(); it.Next(); {
		kv := it.Attribute()
		out = append(out, label{labelName(string(kv.Key)), kv.Value.Emit()})
	}
	// Sorted by key already; sanitising can reorder and join keys.
	slices.SortStableFunc(out, func(a, b label) int { return cmp.Compare(a.name, b.name) })
	merged := out[:0]
	for _, l := range out {
		if n := len(merged); n > 0 && merged[n-1].name == l.name {
			merged[n-1].value += ";" + l.value
			continue
		}
		merged = append(merged, l)
	}
	return merged
}

func sortKey(ls []label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.name)
		b.WriteByte(0)
		b.WriteString(l.value)
		b.WriteByte(0)
	}
	return b.String()
}

// labelName makes an attribute key a valid label name: every character
// outside [a-zA-Z0-9_] becomes _, and a leading digit gets a key_ prefix.
func labelName(key string) string {
	b := []byte(key)
	for i, c := range b {
		if !isAlnum(c) && c != '_' {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return "key_" + string(b)
	}
	return string(b)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
)

// unitWords are the Prometheus words for the OTel units (UCUM codes) of
// the compatibility specification.
var unitWords = map[string]string{
	"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds",
	"By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
	"KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
	"m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
	"Cel": "celsius", "Hz": "hertz", "%": "percent",
}

// perUnitWords name the denominator of a unit like By/s.
var perUnitWords = map[string]string{"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}

// promName builds a metric name from an instrument's name and unit: the
// name's runs of valid characters joined by _, the unit's word unless the
// name holds it already (annotations like {message} add none), _total on
// counters, _ratio on gauges of unit 1.
func promName(name, unit string, k kind) string {
	tokens := strings.FieldsFunc(name, func(r rune) bool { return !(r < 128 && (isAlnum(byte(r)) || r == ':')) })
	main, per, _ := strings.Cut(unit, "/")
	if w := unitWord(main, unitWords); w != "" && !slices.Contains(tokens, w) {
		tokens = append(tokens, w)
	}
	if w := unitWord(per, perUnitWords); w != "" && !slices.Contains(tokens, w) {
		tokens = append(tokens, "per", w)
	}
	switch {
	case k == kindCounter:
		tokens = append(slices.DeleteFunc(tokens, func(t string) bool { return t == "total" }), "total")
	case k == kindGauge && unit == "1":
		tokens = append(slices.DeleteFunc(tokens, func(t string) bool { return t == "ratio" }), "ratio")
	}
	n := strings.Join(tokens, "_")
	if n != "" && n[0] >= '0' && n[0] <= '9' {
		n = "_" + n
	}
	return n
}

// unitWord is the word for one side of a unit: "" for none, for an
// annotation ({request}) or for the dimensionless 1; an unknown unit
// stands for itself, its invalid characters made _.
func unitWord(u string, words map[string]string) string {
	u = strings.TrimSpace(u)
	if u == "" || u == "1" || strings.ContainsAny(u, "{}") {
		return ""
	}
	if w, ok := words[u]; ok {
		return w
	}
	b := []byte(u)
	for i, c := range b {
		if !isAlnum(c) && c != ':' {
			b[i] = '_'
		}
	}
	return strings.Trim(string(b), "_")
}

// writeFamilies writes the text format: HELP and TYPE, then the samples.
func writeFamilies(w *bufio.Writer, fams []*family) {
	num := make([]byte, 0, 32)
	for _, f := range fams {
		if len(f.samples) == 0 {
			continue
		}
		w.WriteString("# HELP ")
		w.WriteString(f.name)
		w.WriteByte(' ')
		writeEscaped(w, f.help, false)
		w.WriteString("\n# TYPE ")
		w.WriteString(f.name)
		w.WriteByte(' ')
		w.WriteString(f.typ)
		w.WriteByte('\n')
		for _, s := range f.samples {
			w.WriteString(f.name)
			w.WriteString(s.suffix)
			if len(s.labels) > 0 || s.extra.name != "" {
				w.WriteByte('{')
				for i, l := range s.labels {
					if i > 0 {
						w.WriteByte(',')
					}
					writeLabel(w, l)
				}
				if s.extra.name != "" {
					if len(s.labels) > 0 {
						w.WriteByte(',')
					}
					writeLabel(w, s.extra)
				}
				w.WriteByte('}')
			}
			w.WriteByte(' ')
			num = appendFloat(num[:0], s.value)
			w.Write(num)
			w.WriteByte('\n')
		}
	}
}

func writeLabel(w *bufio.Writer, l label) {
	w.WriteString(l.name)
	w.WriteString(`="`)
	writeEscaped(w, l.value, true)
	w.WriteByte('"')
}

// writeEscaped escapes \ and newlines (and " in label values).
func writeEscaped(w *bufio.Writer, s string, quote bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			w.WriteString(`\\`)
		case c == '\n':
			w.WriteString(`\n`)
		case c == '"' && quote:
			w.WriteString(`\"`)
		default:
			w.WriteByte(c)
		}
	}
}

func formatFloat(f float64) string { return string(appendFloat(nil, f)) }

// appendFloat writes a value as Prometheus does: shortest representation,
// +Inf, -Inf and NaN spelled out.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// New registers a ManualReader and serves what it collects.
func New() (sdkmetric.Reader, http.Handler) {
	r := sdkmetric.NewManualReader()
	return r, promHandler{reader: r}
}
