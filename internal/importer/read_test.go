package importer

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadAll reads bodies of known and unknown length, of zero, one and
// many blocks, in small and odd reads, and passes a read error through.
func TestReadAll(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 32<<10 - 1, 32 << 10, 32<<10 + 1, 3<<20 + 12345} {
		want := strings.Repeat("BEGIN:VEVENT\r\n", n/14+1)[:n]
		for _, size := range []int64{-1, int64(n)} {
			got, err := readAll(iotest.HalfReader(strings.NewReader(want)), size)
			if err != nil || got != want {
				t.Errorf("%d bytes, size %d: %d bytes, %v; want them all", n, size, len(got), err)
			}
		}
	}
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), iotest.ErrReader(boom))
	if _, err := readAll(r, -1); !errors.Is(err, boom) {
		t.Errorf("read error: %v; want %v", err, boom)
	}
}
