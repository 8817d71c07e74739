package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// pushSample is one timed change of an upstream feed announced with iCal
// Hooks, as import-latency and availability measure it: the event uid is
// added to the feed at path, calhook is pinged through the feed's hook
// URL, and the first webhook about uid is waited for at rcv.
func pushSample(ctx context.Context, client *http.Client, feeds *upstreamFeeds, rcv *hookReceiver, server *proc,
	path, uid string) (sent, arrived time.Time, err error) {
	sent = time.Now()
	hook := feeds.addEvent(path, uid)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, hook, nil)
	if err != nil {
		return sent, arrived, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return sent, arrived, fmt.Errorf("ping %s: %w", hook, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return sent, arrived, fmt.Errorf("ping %s: status %d", hook, resp.StatusCode)
	}
	arrived, err = waitArrival(ctx, rcv, uid, server)
	return sent, arrived, err
}

// waitArrival waits for the webhook about uid and returns when it arrived.
func waitArrival(ctx context.Context, rcv *hookReceiver, uid string, server *proc) (time.Time, error) {
	deadline := time.Now().Add(sampleTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if at, ok := rcv.arrival(uid); ok {
			return at, nil
		}
		if _, _, problem := rcv.stats(); problem != "" {
			return time.Time{}, fmt.Errorf("receiver: %s", problem)
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no webhook for %s within %v", uid, sampleTimeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-server.Exited():
			return time.Time{}, fmt.Errorf("calhook exited; log:\n%s", server.logTail(20))
		case <-tick.C:
		}
	}
}

// pctOf returns the p-th percentile of xs, which it leaves unsorted.
func pctOf(xs []float64, p float64) float64 {
	return percentile(slices.Sorted(slices.Values(xs)), p)
}
