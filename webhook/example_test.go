package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/calhook/calhook/webhook"
)

// A receiver verifies each delivery against the raw body before trusting
// it, answers 2xx quickly, and fetches the details from data.links.self.
func ExampleVerifier() {
	// The secret calhook showed when the subscription was created.
	secret, err := webhook.ParseSecret("whsec_n6Ctu10btwBmaufavlU7DGQrienPi5/GLTkDQwpA5Gw=")
	if err != nil {
		log.Fatal(err)
	}
	verifier := webhook.Verifier{Secret: secret}

	receive := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Verify the exact bytes received: never re-encoded JSON.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := verifier.Verify(body, r.Header); err != nil {
			// errors.Is tells a stale or replayed delivery from a forged one.
			if errors.Is(err, webhook.ErrTimestamp) {
				log.Printf("stale delivery %s: %v", r.Header.Get(webhook.HeaderID), err)
			}
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var event struct {
			WebhookID string `json:"webhookId"`
			EventType string `json:"eventType"`
			Data      struct {
				Links struct {
					Self string `json:"self"`
				} `json:"links"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &event); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		// Deduplicate on event.WebhookID (stable across retries), queue
		// the fetch of event.Data.Links.Self, and answer at once.
		fmt.Printf("received %s, will fetch %s\n", event.EventType, event.Data.Links.Self)
		w.WriteHeader(http.StatusNoContent)
	})

	// What calhook sends, for the example.
	payload := []byte(`{"webhookId":"9b9b499e-095c-4955-8dd0-cc5d84e50764","eventType":"calendar.event.created",` +
		`"timestamp":"2026-11-22T15:39:07+01:00","data":{"calendarId":"cal_1","eventId":"evt_1",` +
		`"links":{"self":"https://calhook.example/api/v1/calendars/cal_1/events/evt_1"}}}`)
	deliver := func(body []byte, header http.Header) {
		req := httptest.NewRequest(http.MethodPost, "/hooks/calhook", bytes.NewReader(body))
		maps.Copy(req.Header, header)
		rec := httptest.NewRecorder()
		receive.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%d %s", rec.Code, rec.Body)))
	}
	signer := webhook.Signer{Secrets: []webhook.Secret{secret}}
	header, err := signer.Sign("9b9b499e-095c-4955-8dd0-cc5d84e50764", time.Now(), payload)
	if err != nil {
		log.Fatal(err)
	}

	deliver(payload, header)
	deliver(bytes.Replace(payload, []byte("created"), []byte("deleted"), 1), header)
	// Output:
	// received calendar.event.created, will fetch https://calhook.example/api/v1/calendars/cal_1/events/evt_1
	// 204
	// 400 webhook: no matching signature among 1 v1 signatures
}

// Sign gives the headers of one delivery attempt. Here the subscription's
// secret is being rotated, so the Standard Webhooks headers carry two
// signatures, the new secret's first.
func ExampleSigner() {
	newSecret := webhook.MustParseSecret("whsec_aoOKTG+P3gG3z34O59bSdtfkOBX5Lij4tdQi+3qq5Qg=")
	oldSecret := webhook.MustParseSecret("whsec_n6Ctu10btwBmaufavlU7DGQrienPi5/GLTkDQwpA5Gw=")
	signer := webhook.Signer{Secrets: []webhook.Secret{newSecret, oldSecret}}

	body := []byte(`{"webhookId":"9b9b499e-095c-4955-8dd0-cc5d84e50764","eventType":"calendar.event.created"}`)
	sentAt := time.Date(2026, 11, 22, 14, 39, 7, 0, time.UTC)
	header, err := signer.Sign("9b9b499e-095c-4955-8dd0-cc5d84e50764", sentAt, body)
	if err != nil {
		log.Fatal(err)
	}
	// The delivery code adds these; Sign leaves them to it.
	header.Set(webhook.HeaderEvent, "calendar.event.created")
	header.Set("Content-Type", "application/json")

	for _, name := range slices.Sorted(maps.Keys(header)) {
		fmt.Printf("%s: %s\n", name, header.Get(name))
	}
	// Output:
	// Content-Type: application/json
	// Svix-Id: 9b9b499e-095c-4955-8dd0-cc5d84e50764
	// Svix-Signature: v1,h8IdhXhICcC7z3gFG8bI0e8sBpN3myBOmwJh+0RyIss= v1,Vg/tN7a1ttsuBixjfMiXTb4Hor2N2W9Cd7jzGjsqqmE=
	// Svix-Timestamp: 1795358347
	// Webhook-Id: 9b9b499e-095c-4955-8dd0-cc5d84e50764
	// Webhook-Signature: v1,h8IdhXhICcC7z3gFG8bI0e8sBpN3myBOmwJh+0RyIss= v1,Vg/tN7a1ttsuBixjfMiXTb4Hor2N2W9Cd7jzGjsqqmE=
	// Webhook-Timestamp: 1795358347
	// X-Calhook-Event: calendar.event.created
	// X-Calhook-Signature: sha256=cb6ab2dae48c459c0256d388d85326dec6d42a84765b9c321b33f4af472c56e0
}
