package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/calhook/calhook/internal/delivery"
	"github.com/calhook/calhook/internal/id"
	"github.com/calhook/calhook/webhook"
)

const baselineName = "webhooks-baseline"

// baselineFlags registers the flags of webhooks-baseline.
func baselineFlags(fs *flag.FlagSet, cfg *Config) {
	fs.IntVar(&cfg.Changes, "changes", DefaultChanges, "webhooks posted per round")
	fs.IntVar(&cfg.DeliveryWorkers, "delivery-workers", DefaultDeliveryWorkers, "concurrent senders, as calhook's delivery workers")
}

// baselineRound is what one round measured.
type baselineRound struct {
	ok, failed int64
	elapsed    time.Duration
	rcv        receiverStats
	detail     string
}

// runWebhooksBaseline is the webhooks-baseline scenario: with no calhook
// and no database, cfg.DeliveryWorkers goroutines post cfg.Changes signed
// webhooks, shaped as calhook's, to the same receiver. Each request is
// signed when sent, as calhook signs each attempt. The rate is the
// ceiling calhook's delivery can reach on this machine.
func runWebhooksBaseline(ctx context.Context, cfg Config) ([]Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	env, err := newWebhookEnv(ctx, cfg, baselineName, 50)
	if err != nil {
		return nil, err
	}
	defer env.close()

	bodies, err := baselinePayloads(cfg.Changes)
	if err != nil {
		return nil, err
	}
	var rounds []baselineRound
	for round := 1; round <= cfg.Runs; round++ {
		r, err := env.baselineRound(ctx, bodies)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		rounds = append(rounds, r)
		env.log.Info("round", "round", fmt.Sprintf("%d/%d", round, cfg.Runs), "webhooks", r.ok,
			"baseline_rps", round1(perSecond(r.ok, r.elapsed)), "errors", r.failed+r.rcv.errors())
		if r.detail != "" {
			env.log.Warn("some posts failed", "detail", r.detail)
		}
	}

	machine := hostResult(baselineName)
	machine.Info["changes"] = cfg.Changes
	machine.Info["senders"] = cfg.DeliveryWorkers
	machine.Info["runs"] = cfg.Runs
	var rps []float64
	var errs, dups int64
	for _, r := range rounds {
		rps = append(rps, perSecond(r.ok, r.elapsed))
		errs += r.failed + r.rcv.errors()
		dups += r.rcv.Duplicates
	}
	return []Result{machine, {
		Scenario: baselineName, Metric: "baseline_rps", Value: round1(median(rps)), Unit: "webhooks/s",
		Runs: roundAll(rps, round1), Errors: errCount(errs),
		Info: map[string]any{"senders": cfg.DeliveryWorkers, "webhooks": cfg.Changes, "duplicates": dups},
	}}, nil
}

// baselinePayloads returns n webhook bodies as calhook's fan-out encodes
// them, about the events the throughput scenario writes.
func baselinePayloads(n int) ([]baselineBody, error) {
	events, err := genEvents(n, eventSeed, eventBase, "Europe/Berlin")
	if err != nil {
		return nil, err
	}
	const base = "http://127.0.0.1:8080"
	accountID, calendarID := id.New("acc"), id.New("cal")
	cal := base + "/v1/calendars/" + url.PathEscape(calendarID)
	out := make([]baselineBody, n)
	for i, e := range events {
		eventID := id.New("evt")
		status := e.Status
		if status == "" {
			status = "confirmed"
		}
		p := delivery.Payload{
			WebhookID: id.UUID(), EventType: "calendar.event.created",
			Timestamp: time.Now().UTC().Format(time.RFC3339Nano),
			Data: delivery.PayloadData{
				AccountID: accountID, CalendarID: calendarID, EventID: eventID, UID: e.UID,
				Start: e.Start, End: e.End, AllDay: e.AllDay, Status: status,
				Links: delivery.Links{
					Self: cal + "/events/" + eventID, Calendar: cal,
					Feed: base + "/feeds/" + accountID + "/" + calendarID + ".ics",
				},
			},
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		out[i] = baselineBody{id: p.WebhookID, eventType: p.EventType, body: b}
	}
	return out, nil
}

// baselineBody is one webhook to post.
type baselineBody struct {
	id, eventType string
	body          []byte
}

// baselineRound posts every body once with cfg.DeliveryWorkers senders.
func (env *webhookEnv) baselineRound(ctx context.Context, bodies []baselineBody) (baselineRound, error) {
	var r baselineRound
	secretText, err := webhook.NewSecret()
	if err != nil {
		return r, err
	}
	secret, err := webhook.ParseSecret(secretText)
	if err != nil {
		return r, err
	}
	env.rcv.reset(false)
	const path = "/hooks/0"
	env.rcv.addEndpoint(path, secret)
	target := env.rcv.URL + path

	workers := env.cfg.DeliveryWorkers
	// The transport calhook's delivery client would have with
	// --delivery-per-endpoint equal to the workers.
	tr := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: workers,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var next atomic.Int64
	var mu sync.Mutex
	fails := failures{}
	var last time.Time
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var ok int64
			var mine time.Time
			myFails := failures{}
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					break
				}
				status, err := postSigned(ctx, client, target, secretText, bodies[i])
				mine = time.Now()
				if err == nil && status >= 200 && status < 300 {
					ok++
				} else {
					myFails.add(status, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			r.ok += ok
			if mine.After(last) {
				last = mine
			}
			for k, v := range myFails {
				fails[k] += v
				r.failed += v
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.elapsed = last.Sub(start)
	r.detail = fails.String()
	if err := env.rcv.waitFor(ctx, r.ok, stallTimeout, nil); err != nil {
		return r, err
	}
	r.rcv, _, _ = env.rcv.stats()
	return r, nil
}

// postSigned sends one webhook the way calhook's dispatcher does: the
// secret parsed and the body signed for this attempt, the same headers, a
// per-attempt timeout, and up to 1 KiB of the answer read.
func postSigned(ctx context.Context, client *http.Client, target, secretText string, b baselineBody) (int, error) {
	secret, err := webhook.ParseSecret(secretText)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	h, err := webhook.Signer{Secrets: []webhook.Secret{secret}}.Sign(b.id, now, b.body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b.body))
	if err != nil {
		return 0, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "calhookbench")
	req.Header.Set(webhook.HeaderEvent, b.eventType)
	req.Header.Set(webhook.HeaderDeliveryID, id.UUID())
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1024))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
