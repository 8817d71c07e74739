package feed

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store"
)

// TestRenderChunks checks that a render reusing an earlier render's
// VEVENTs gives the bytes of a render from scratch, when events come,
// change, go, are cancelled, and when a UID shared by two calendars
// changes which of them publishes it as is.
func TestRenderChunks(t *testing.T) {
	at := time.Date(2027, 3, 28, 0, 30, 0, 0, time.UTC)
	ev := func(id, cal, uid string, h int, zone string) *store.Event {
		return &store.Event{ID: id, CalendarID: cal, UID: uid, Summary: "Stay " + id + ", with a long text that the encoder has to fold",
			Start: at.Add(time.Duration(h) * time.Hour), End: at.Add(time.Duration(h+2) * time.Hour), TimeZone: zone,
			Status: store.StatusConfirmed, CreatedAt: at, UpdatedAt: at, Extra: map[string]string{"X-ID": id}}
	}
	a := ev("a", "c1", "shared", 0, "Europe/Berlin")
	b := ev("b", "c2", "shared", 5, "Europe/Berlin")
	c := ev("c", "c1", "c", 10, "America/New_York")
	d := ev("d", "c2", "d", 20, "")
	moved := *c
	moved.Start, moved.End, moved.UpdatedAt = moved.Start.Add(time.Hour), moved.End.Add(time.Hour), at.Add(time.Minute)
	cancelled := *d
	cancelled.Status = store.StatusCancelled
	opts := RenderOptions{ProdID: "-//calhook//test//EN", Name: "Test", RefreshInterval: time.Hour}
	steps := []struct {
		name   string
		events []*store.Event
	}{
		{"first", []*store.Event{a, b, c, d}},
		{"same", []*store.Event{a, b, c, d}},
		{"moved", []*store.Event{a, b, &moved, d}},
		{"first of a shared UID gone", []*store.Event{b, &moved, d}},
		{"it is back", []*store.Event{a, b, &moved, d}},
		{"cancelled", []*store.Event{a, b, &moved, &cancelled}},
		{"none", nil},
		{"all again", []*store.Event{a, b, c, d}},
	}
	var prev map[*store.Event]chunk
	for _, st := range steps {
		var want bytes.Buffer
		if err := Render(&want, st.events, opts); err != nil {
			t.Fatal(err)
		}
		got, next, err := renderChunks(st.events, opts, prev)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: renderChunks =\n%s\nwant\n%s", st.name, got, want.Bytes())
		}
		for e, ch := range next {
			if !bytes.HasPrefix(ch.b, []byte("BEGIN:VEVENT\r\n")) || !bytes.HasSuffix(ch.b, []byte("END:VEVENT\r\n")) ||
				!bytes.Contains(ch.b, []byte(fmt.Sprintf("X-ID:%s\r\n", e.ID))) {
				t.Errorf("%s: chunk of %s = %q; want its VEVENT", st.name, e.ID, ch.b)
			}
		}
		prev = next
	}
}
