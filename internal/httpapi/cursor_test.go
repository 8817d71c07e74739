package httpapi

import (
	"encoding/base64"
	"testing"

	"github.com/calhook/calhook/internal/store"
)

func TestChangeCursorRoundTrip(t *testing.T) {
	for _, p := range []store.ChangePos{
		{}, {ID: 1}, {ID: 1 << 62}, {TxID: 1, ID: 0}, {TxID: 742, ID: 9001}, {TxID: 1<<64 - 1, ID: 1<<63 - 1},
	} {
		got, err := decodeChangeCursor(encodeChangeCursor(p))
		if err != nil || got != p {
			t.Errorf("decode(encode(%+v)) = %+v, %v", p, got, err)
		}
	}
	// A position without a transaction id is a plain page cursor, as
	// change cursors were before positions had one.
	if got, want := encodeChangeCursor(store.ChangePos{ID: 5}), encodeCursor(5); got != want {
		t.Errorf("cursor of change 5 = %q; want the page cursor %q", got, want)
	}
}

func TestChangeCursorRejects(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		"", "!!", enc("x"), enc("x5"), enc("x5."), enc("x.5"), enc("x0.5"), enc("x5.-1"), enc("x-5.1"),
		enc("x5.1.2"), enc("x18446744073709551616.1"), enc("p-1"), enc("q5"),
	} {
		if p, err := decodeChangeCursor(s); err == nil {
			t.Errorf("decodeChangeCursor(%q) = %+v; want an error", s, p)
		}
	}
}
