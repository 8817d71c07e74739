package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store/storetest"
)

// BenchmarkWriteBatch is POST …/events/batch with 1,000 creates through
// the whole handler (middleware, strict JSON decoding, validation, the
// service, SQLite, the answer), with events shaped like the bench
// command's: half with a UID of their own, zones, all-day, recurring ones,
// descriptions and metadata. events/s is the route's rate on one
// connection without deliveries beside it (issue 23: 20,000 with them).
func BenchmarkWriteBatch(b *testing.B) {
	s := newServerOn(b, storetest.OpenSQLite(b), adminToken, nil)
	a := s.newAccount("Bench")
	cal := s.newCalendar(a, "Cal", "Europe/Berlin")
	path := "/v1/calendars/" + cal + "/events/batch"
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		body := batchBody(n, 1000)
		n += 1000
		b.StartTimer()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+a.key)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("POST batch = %d %.300s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// batchBody returns a batch of k creates numbered from n.
func batchBody(n, k int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"items":[`)
	day := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := n; i < n+k; i++ {
		if i > n {
			buf.WriteByte(',')
		}
		d := day.AddDate(0, 0, i%365)
		buf.WriteString(`{"op":"create","event":{`)
		if i%2 == 0 {
			fmt.Fprintf(&buf, `"uid":"bench-%06d@pms.example",`, i)
		}
		fmt.Fprintf(&buf, `"summary":"Booking #%d","location":"Cottage %d",`, i, i%7)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&buf, `"allDay":true,"start":%q,"end":%q`, d.Format(time.DateOnly), d.AddDate(0, 0, 2).Format(time.DateOnly))
		case 1:
			st := d.Add(15 * time.Hour)
			fmt.Fprintf(&buf, `"start":%q,"end":%q,"timeZone":"Europe/Berlin","description":"Check-in after 3 pm.\nKey in the box."`,
				st.Format("2006-01-02T15:04:05"), st.Add(time.Hour).Format("2006-01-02T15:04:05"))
		case 2:
			st := d.Add(9 * time.Hour)
			fmt.Fprintf(&buf, `"start":%q,"end":%q,"status":"tentative","metadata":{"source":"pms","room":"%d"}`,
				st.Format(time.RFC3339), st.Add(30*time.Minute).Format(time.RFC3339), i%40)
		default:
			st := d.Add(10 * time.Hour)
			fmt.Fprintf(&buf, `"start":%q,"end":%q,"timeZone":"Europe/Berlin","rrule":"FREQ=WEEKLY;COUNT=10"`,
				st.Format("2006-01-02T15:04:05"), st.Add(time.Hour).Format("2006-01-02T15:04:05"))
		}
		buf.WriteString(`}}`)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}
