package store_test

import (
	"testing"

	"github.com/calhook/calhook/internal/store"
)

func TestCheckAttempts(t *testing.T) {
	withSeq := func(seq int64) *store.AttemptResult {
		return &store.AttemptResult{Attempt: store.Attempt{MessageID: "msg", MessageSeq: seq}}
	}
	for _, tc := range []struct {
		name    string
		results []*store.AttemptResult
		wantErr bool
	}{
		{"none", nil, false},
		{"all with seqs", []*store.AttemptResult{withSeq(1), withSeq(7)}, false},
		{"one without", []*store.AttemptResult{withSeq(1), withSeq(0)}, true},
		{"negative", []*store.AttemptResult{withSeq(-1)}, true},
	} {
		if err := store.CheckAttempts(tc.results); (err != nil) != tc.wantErr {
			t.Errorf("%s: CheckAttempts = %v; want an error: %v", tc.name, err, tc.wantErr)
		}
	}
}
