package pipedrivetest_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/pipedrive-gateway/pipedrive-gateway/pipedrive/pipedrivetest"
)

// BenchmarkCompanies touches a new company of AddCompanies per iteration
// (GET /v1/webhooks) and reports the memory each one costs once used.
func BenchmarkCompanies(b *testing.B) {
	s := pipedrivetest.New(pipedrivetest.Options{DiscardCalls: true})
	s.AddCompanies(max(b.N, 1), 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodGet, "/v1/webhooks", nil)
		req.Header.Set("x-api-token", pipedrivetest.RangeToken(int64(i+1)))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(b.N), "heap-B/company")
	runtime.KeepAlive(s)
}
