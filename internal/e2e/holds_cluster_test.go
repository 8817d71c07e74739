package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/calhook/calhook/internal/store/storetest"
)

// TestHoldsTwoNodes runs two `calhook serve` processes on one fresh
// PostgreSQL schema and races holds of one unit through both, over HTTP:
//
//   - 50 overlapping holds (every one takes the night of the 10th, each a
//     different stretch around it), sent at once, alternately to each
//     node: exactly one is answered 201 and the 49 others 409, each naming
//     the winner as its conflict; the unit then has one native calendar
//     (the first hold creates it, whichever node places it) holding one
//     hold event;
//   - 50 holds of disjoint nights sent at once the same way: all 201.
//
// It needs CALHOOK_TEST_POSTGRES (skipped without it, failed if the
// database does not answer).
func TestHoldsTwoNodes(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	t.Parallel()
	const racers = 50
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db := storetest.PostgresSchema(t, dbURL)
	admin := randomHex(16)
	nodes := []*server{startServer(t, db, admin), startServer(t, db, admin)}
	api := newClient()
	api.http.Transport.(*http.Transport).MaxIdleConnsPerHost = racers
	key := newAccount(t, api, nodes[0].baseURL(), admin, "holds on two nodes")
	var unit struct{ ID string }
	api.mustDo(t, http.MethodPost, nodes[1].baseURL()+"/v1/units", key, map[string]string{"name": "Flat", "timeZone": "UTC"},
		&unit, http.StatusCreated)

	day := func(n int) string {
		return time.Date(2031, 7, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n-1).Format(time.DateOnly)
	}
	overlapping := make([][2]string, racers)
	disjoint := make([][2]string, racers)
	for i := range racers {
		overlapping[i] = [2]string{day(10 - i%3), day(11 + i%4)}
		disjoint[i] = [2]string{day(100 + 2*i), day(101 + 2*i)}
	}

	answers := raceHolds(ctx, t, api, nodes, key, unit.ID, overlapping)
	winner := ""
	for i, a := range answers {
		if a.status == http.StatusCreated {
			if winner != "" {
				t.Errorf("hold %d (%s..%s, node %d) answered 201 too: a second winner", i, overlapping[i][0], overlapping[i][1], i%2)
			}
			winner = a.Hold.ID
		}
	}
	if winner == "" {
		t.Fatalf("no overlapping hold won; answers: %v", statuses(answers))
	}
	for i, a := range answers {
		if a.status == http.StatusCreated {
			continue
		}
		switch {
		case a.status != http.StatusConflict:
			t.Errorf("hold %d (node %d) answered %d (%s); want 201 or 409", i, i%2, a.status, a.body)
		case len(a.Conflicts) != 1 || a.Conflicts[0].Kind != "hold" || a.Conflicts[0].HoldID != winner:
			t.Errorf("hold %d (node %d): conflicts %+v; want the winner %s", i, i%2, a.Conflicts, winner)
		}
	}

	for i, a := range raceHolds(ctx, t, api, nodes, key, unit.ID, disjoint) {
		if a.status != http.StatusCreated {
			t.Errorf("disjoint hold %d (%s..%s, node %d) answered %d (%s); want 201", i, disjoint[i][0], disjoint[i][1], i%2, a.status, a.body)
		}
	}

	// Both nodes list the same holds; one native calendar holds their
	// events.
	for n, s := range nodes {
		var list struct {
			Data []struct{ ID, CalendarID, State string }
		}
		api.mustDo(t, http.MethodGet, s.baseURL()+"/v1/units/"+unit.ID+"/holds?limit=200", key, nil, &list, http.StatusOK)
		cals := map[string]bool{}
		for _, h := range list.Data {
			cals[h.CalendarID] = true
			if h.State != "held" {
				t.Errorf("node %d lists hold %s %s; want held", n, h.ID, h.State)
			}
		}
		if len(list.Data) != 1+racers || len(cals) != 1 {
			t.Errorf("node %d lists %d holds in %d calendars; want %d in one", n, len(list.Data), len(cals), 1+racers)
		}
	}
	// The account has no other calendars: the holds made only one.
	var cals struct {
		Data []struct{ ID, Kind, UnitID string }
	}
	api.mustDo(t, http.MethodGet, nodes[0].baseURL()+"/v1/calendars", key, nil, &cals, http.StatusOK)
	if len(cals.Data) != 1 || cals.Data[0].Kind != "native" || cals.Data[0].UnitID != unit.ID {
		t.Errorf("the account's calendars: %+v; want one native calendar of unit %s", cals.Data, unit.ID)
	}
}

// holdAnswer is what a hold request got back.
type holdAnswer struct {
	status int
	body   string
	Hold   struct{ ID string }
	// Conflicts is set on a 409.
	Conflicts []struct {
		Kind   string
		HoldID string
	}
}

// raceHolds sends one hold request per interval at once, the i-th to
// node i modulo the nodes, and returns the answers in order. A request
// that gets no answer fails the test.
func raceHolds(ctx context.Context, t *testing.T, api *client, nodes []*server, key, unitID string, intervals [][2]string) []holdAnswer {
	t.Helper()
	out := make([]holdAnswer, len(intervals))
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, iv := range intervals {
		wg.Go(func() {
			body, err := json.Marshal(map[string]string{"start": iv[0], "end": iv[1]})
			if err != nil {
				t.Error(err)
				return
			}
			url := nodes[i%len(nodes)].baseURL() + "/v1/units/" + unitID + "/holds"
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			<-gate
			resp, err := api.http.Do(req)
			if err != nil {
				t.Errorf("hold %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Errorf("hold %d: read the answer: %v", i, err)
				return
			}
			a := &out[i]
			a.status, a.body = resp.StatusCode, string(b)
			if err := json.Unmarshal(b, a); err != nil {
				t.Errorf("hold %d: answer %d %q: %v", i, resp.StatusCode, b, err)
			}
		})
	}
	close(gate)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// statuses counts answers by status.
func statuses(as []holdAnswer) string {
	n := map[int]int{}
	for _, a := range as {
		n[a.status]++
	}
	return fmt.Sprint(n)
}
