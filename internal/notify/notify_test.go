package notify_test

import (
	"sync"
	"testing"

	"github.com/calhook/calhook/internal/notify"
)

func TestTopicPublishesToEverySubscriberInOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		subs int
	}{
		{"none", 0},
		{"one", 1},
		{"three", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var bus notify.Bus
			var got []int
			for i := range tt.subs {
				bus.FeedsChanged.Subscribe(func(c notify.FeedChange) {
					if c.AccountID != "a" {
						t.Errorf("subscriber %d got account %q; want %q", i, c.AccountID, "a")
					}
					got = append(got, i)
				})
			}
			bus.FeedsChanged.Publish(notify.FeedChange{AccountID: "a"})
			if len(got) != tt.subs {
				t.Fatalf("Publish called %d subscribers; want %d", len(got), tt.subs)
			}
			for i, n := range got {
				if n != i {
					t.Errorf("call %d went to subscriber %d; want %d", i, n, i)
				}
			}
		})
	}
}

func TestTopicsAreIndependent(t *testing.T) {
	t.Parallel()
	var bus notify.Bus
	var messages, polls int
	bus.MessagesDue.Subscribe(func(notify.Due) { messages++ })
	bus.PollsDue.Subscribe(func(notify.Due) { polls++ })
	bus.MessagesDue.Publish(notify.Due{})
	if messages != 1 || polls != 0 {
		t.Errorf("after MessagesDue: messages, polls = %d, %d; want 1, 0", messages, polls)
	}
}

func TestSubscribeWhilePublishing(t *testing.T) {
	t.Parallel()
	var bus notify.Bus
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls := 0
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			bus.MessagesDue.Subscribe(func(notify.Due) { mu.Lock(); calls++; mu.Unlock() })
		}()
		go func() {
			defer wg.Done()
			bus.MessagesDue.Publish(notify.Due{})
		}()
	}
	wg.Wait()
	calls = 0
	bus.MessagesDue.Publish(notify.Due{})
	if calls != 4 {
		t.Errorf("Publish after 4 subscriptions made %d calls; want 4", calls)
	}
}

func TestFeedChangeAll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    notify.FeedChange
		want bool
	}{
		{notify.FeedChange{}, true},
		{notify.FeedChange{AccountID: "a"}, false},
		{notify.FeedChange{AccountID: "a", CalendarID: "c", Calendar: true}, false},
	}
	for _, tt := range tests {
		if got := tt.c.All(); got != tt.want {
			t.Errorf("%+v.All() = %v; want %v", tt.c, got, tt.want)
		}
	}
}
