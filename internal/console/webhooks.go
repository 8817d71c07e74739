package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
)

type webhooksData struct {
	Subscriptions []*store.Subscription
	Calendars     []*store.Calendar
	EventTypes    []string
	// AllCalendars offers "every calendar" (not to a scoped portal).
	AllCalendars bool
	// Created is a subscription just made or rotated, its secret shown once.
	Created *store.Subscription
}

func (h *Handler) listSubscriptions(r *http.Request, v *view) ([]*store.Subscription, error) {
	var out []*store.Subscription
	p := store.ListSubscriptionsParams{AccountID: v.accountID(), Page: store.Page{Limit: 200}}
	for {
		subs, err := h.cfg.Subscriptions.List(r.Context(), p)
		if err != nil {
			return nil, err
		}
		for _, s := range subs {
			if v.allows(s.CalendarID) {
				out = append(out, s)
			}
		}
		if len(subs) < p.Limit {
			return out, nil
		}
		p.After = subs[len(subs)-1].Seq
	}
}

func (h *Handler) webhooksPage(w http.ResponseWriter, r *http.Request, v *view) {
	h.showWebhooks(w, r, v, http.StatusOK, nil)
}

func (h *Handler) showWebhooks(w http.ResponseWriter, r *http.Request, v *view, status int, created *store.Subscription) {
	subs, err := h.listSubscriptions(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	cals, err := h.listCalendars(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d := &webhooksData{Subscriptions: subs, Calendars: cals, EventTypes: subscription.EventTypes,
		AllCalendars: !v.calendarScoped(), Created: created}
	h.render(w, r, v, status, "webhooks", &pageData{Title: "Webhooks", Nav: "webhooks", Data: d})
}

func (h *Handler) createSubscription(w http.ResponseWriter, r *http.Request, v *view) {
	calID := r.PostFormValue("calendarId")
	if !v.allows(calID) {
		h.renderError(w, r, v, &pageError{http.StatusBadRequest, "Choose a calendar", "Choose one of the calendars listed."})
		return
	}
	u, desc := r.PostFormValue("webhookUrl"), r.PostFormValue("description")
	in := subscription.Input{URL: &u, Description: &desc}
	if calID != "" {
		in.CalendarID = &calID
	}
	if types := r.PostForm["eventTypes"]; len(types) > 0 {
		in.EventTypes = &types
	}
	if rl := strings.TrimSpace(r.PostFormValue("rateLimit")); rl != "" {
		n, err := strconv.Atoi(rl)
		if err != nil {
			n = -1
		}
		in.RateLimit = &n
	}
	sub, err := h.cfg.Subscriptions.Create(r.Context(), v.accountID(), in, nil)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	h.showWebhooks(w, r, v, http.StatusCreated, sub)
}

// scopedSubscription returns a subscription the session may see.
func (h *Handler) scopedSubscription(r *http.Request, v *view, id string) (*store.Subscription, error) {
	sub, err := h.cfg.Subscriptions.Get(r.Context(), v.accountID(), id)
	if err != nil {
		return nil, err
	}
	if !v.allows(sub.CalendarID) {
		return nil, store.ErrNotFound
	}
	return sub, nil
}

type subscriptionData struct {
	Subscription *store.Subscription
	Messages     []*store.Message
	Status       string
	EventType    string
	Statuses     []string
	EventTypes   []string
	More         string
	// Secret is shown once after a rotation.
	Secret string
}

// messagesPage is how many messages one page of the log shows.
const messagesPage = 50

func (h *Handler) subscriptionPage(w http.ResponseWriter, r *http.Request, v *view) {
	h.showSubscription(w, r, v, "")
}

func (h *Handler) showSubscription(w http.ResponseWriter, r *http.Request, v *view, secret string) {
	sub, err := h.scopedSubscription(r, v, r.PathValue("subscriptionId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	q := r.URL.Query()
	d := &subscriptionData{
		Subscription: sub, Status: q.Get("status"), EventType: q.Get("type"), Secret: secret,
		Statuses:   []string{store.MessagePending, store.MessageDelivering, store.MessageDelivered, store.MessageUndeliverable},
		EventTypes: append(append([]string{}, subscription.EventTypes...), subscription.EventTest),
	}
	after, _ := strconv.ParseInt(q.Get("after"), 10, 64)
	msgs, next, err := h.cfg.Subscriptions.FilterMessages(r.Context(), store.ConsoleMessagesParams{
		AccountID: v.accountID(), SubscriptionID: sub.ID, Status: d.Status, EventType: d.EventType,
		Page: store.Page{After: after, Limit: messagesPage},
	})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	d.Messages = msgs
	if next != 0 {
		d.More = "?" + url.Values{"status": {d.Status}, "type": {d.EventType},
			"after": {strconv.FormatInt(next, 10)}}.Encode()
	}
	h.render(w, r, v, http.StatusOK, "subscription", &pageData{Title: "Webhook " + sub.URL, Nav: "webhooks", Data: d})
}

func (h *Handler) subscriptionAction(w http.ResponseWriter, r *http.Request, v *view) {
	sub, err := h.scopedSubscription(r, v, r.PathValue("subscriptionId"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	ctx, acc := r.Context(), v.accountID()
	path := "/console/webhooks/" + url.PathEscape(sub.ID)
	var notice string
	switch r.PathValue("action") {
	case "rotate":
		rotated, err := h.cfg.Subscriptions.RotateSecret(ctx, acc, sub.ID)
		if err != nil {
			h.renderError(w, r, v, err)
			return
		}
		h.showSubscription(w, r, v, rotated.Secret)
		return
	case "disable", "enable":
		off := r.PathValue("action") == "disable"
		_, err = h.cfg.Subscriptions.Update(ctx, acc, sub.ID, subscription.Input{Disabled: &off})
		notice = r.PathValue("action") + "d"
	case "delete":
		if err := h.cfg.Subscriptions.Delete(ctx, acc, sub.ID); err != nil {
			h.renderError(w, r, v, err)
			return
		}
		redirect(w, r, "/console/webhooks", "deleted")
		return
	case "test":
		_, err = h.cfg.Subscriptions.SendTest(ctx, acc, sub.ID)
		notice = "test"
	case "redeliver-failed":
		since, perr := time.Parse("2006-01-02T15:04", r.PostFormValue("since"))
		if perr != nil {
			since, perr = time.Parse("2006-01-02", r.PostFormValue("since"))
		}
		if perr != nil {
			h.renderError(w, r, v, &pageError{http.StatusBadRequest, "Choose a time", "Give the time (UTC) from which to redeliver failed messages."})
			return
		}
		_, err = h.cfg.Subscriptions.RedeliverFailed(ctx, acc, sub.ID, since)
		notice = "redelivered"
	default:
		h.renderError(w, r, v, errNotFound)
		return
	}
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, path, notice)
}

type messageData struct {
	Message      *store.Message
	Subscription *store.Subscription
	Attempts     []*store.Attempt
	Payload      string
	// Headers are the request headers every attempt carries; the
	// signatures and timestamp differ per attempt and are not kept.
	Headers [][2]string
}

// scopedMessage returns a message and its subscription, if the session
// may see them; pings (no subscription) are not shown.
func (h *Handler) scopedMessage(r *http.Request, v *view) (*store.Message, *store.Subscription, error) {
	m, err := h.cfg.Subscriptions.Message(r.Context(), v.accountID(), r.PathValue("messageId"))
	if err != nil {
		return nil, nil, err
	}
	if m.SubscriptionID == "" {
		return nil, nil, store.ErrNotFound
	}
	sub, err := h.scopedSubscription(r, v, m.SubscriptionID)
	if err != nil {
		return nil, nil, err
	}
	return m, sub, nil
}

func (h *Handler) messagePage(w http.ResponseWriter, r *http.Request, v *view) {
	m, sub, err := h.scopedMessage(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	attempts, err := h.cfg.Subscriptions.ListAttempts(r.Context(), store.ListAttemptsParams{
		AccountID: v.accountID(), MessageID: m.ID, Page: store.Page{Limit: 100},
	})
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	payload := string(m.Payload)
	var pretty bytes.Buffer
	if json.Indent(&pretty, m.Payload, "", "  ") == nil {
		payload = pretty.String()
	}
	h.render(w, r, v, http.StatusOK, "message", &pageData{Title: "Message " + m.ID, Nav: "webhooks", Data: &messageData{
		Message: m, Subscription: sub, Attempts: attempts, Payload: payload,
		Headers: [][2]string{
			{"Content-Type", "application/json"}, {"webhook-id", m.ID}, {"svix-id", m.ID}, {"X-Calhook-Event", m.EventType},
			{"webhook-timestamp, webhook-signature, svix-timestamp, svix-signature, X-Calhook-Signature", "set for each attempt"},
		},
	}})
}

func (h *Handler) redeliver(w http.ResponseWriter, r *http.Request, v *view) {
	m, _, err := h.scopedMessage(r, v)
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	if _, err := h.cfg.Subscriptions.Redeliver(r.Context(), v.accountID(), m.ID); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/messages/"+url.PathEscape(m.ID), "redelivered")
}
