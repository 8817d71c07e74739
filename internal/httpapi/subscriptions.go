package httpapi

import (
	"net/http"
	"time"

	"github.com/calhook/calhook/internal/store"
	"github.com/calhook/calhook/internal/subscription"
)

type subscriptionJSON struct {
	ID                    string     `json:"id"`
	CalendarID            *string    `json:"calendarId"`
	WebhookURL            string     `json:"webhookUrl"`
	Description           string     `json:"description"`
	EventTypes            []string   `json:"eventTypes"`
	RateLimit             *int       `json:"rateLimit"`
	Disabled              bool       `json:"disabled"`
	DisabledReason        string     `json:"disabledReason,omitempty"`
	DisabledAt            *time.Time `json:"disabledAt,omitempty"`
	FailingSince          *time.Time `json:"failingSince,omitempty"`
	PreviousSecretExpires *time.Time `json:"previousSecretExpiresAt,omitempty"`
	CreatedAt             time.Time  `json:"createdAt"`
	UpdatedAt             time.Time  `json:"updatedAt"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func toSubscriptionJSON(s *store.Subscription) subscriptionJSON {
	out := subscriptionJSON{
		ID: s.ID, WebhookURL: s.URL, Description: s.Description, EventTypes: s.EventTypes,
		Disabled: s.Disabled, DisabledReason: s.DisabledReason, DisabledAt: optTime(s.DisabledAt),
		FailingSince: optTime(s.FailingSince), CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if out.EventTypes == nil {
		out.EventTypes = []string{}
	}
	if s.CalendarID != "" {
		out.CalendarID = &s.CalendarID
	}
	if s.RateLimit > 0 {
		out.RateLimit = &s.RateLimit
	}
	if s.PrevSecret != "" && time.Now().Before(s.PrevSecretExpiresAt) {
		out.PreviousSecretExpires = optTime(s.PrevSecretExpiresAt)
	}
	return out
}

type subscriptionInput struct {
	CalendarID  *string   `json:"calendarId"`
	WebhookURL  *string   `json:"webhookUrl"`
	EventTypes  *[]string `json:"eventTypes"`
	RateLimit   *int      `json:"rateLimit"`
	Description *string   `json:"description"`
	Disabled    *bool     `json:"disabled"`
}

func (in subscriptionInput) domain() subscription.Input {
	return subscription.Input{
		CalendarID: in.CalendarID, URL: in.WebhookURL, EventTypes: in.EventTypes, RateLimit: in.RateLimit,
		Description: in.Description, Disabled: in.Disabled,
	}
}

func (h *Handler) createSubscription(w http.ResponseWriter, r *http.Request) {
	var in subscriptionInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	sub, err := h.cfg.Subscriptions.Create(r.Context(), accountFrom(r.Context()).ID, in.domain(), nil)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		WebhookSubscriptionID string `json:"webhookSubscriptionId"`
		EndpointSecret        string `json:"endpointSecret"`
		subscriptionJSON
	}{sub.ID, sub.Secret, toSubscriptionJSON(sub)})
}

// subscriptionSeq is a subscription's position in a list.
func subscriptionSeq(s *store.Subscription) int64 { return s.Seq }

func (h *Handler) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Subscription, error) {
		return h.cfg.Subscriptions.List(r.Context(), store.ListSubscriptionsParams{
			AccountID: accountFrom(r.Context()).ID, CalendarID: r.URL.Query().Get("calendarId"), Page: p,
		})
	}, subscriptionSeq, toSubscriptionJSON)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) getSubscription(w http.ResponseWriter, r *http.Request) {
	sub, err := h.cfg.Subscriptions.Get(r.Context(), accountFrom(r.Context()).ID, r.PathValue("subscriptionId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toSubscriptionJSON(sub))
}

func (h *Handler) updateSubscription(w http.ResponseWriter, r *http.Request) {
	acct, subID := accountFrom(r.Context()).ID, r.PathValue("subscriptionId")
	if _, err := h.cfg.Subscriptions.Get(r.Context(), acct, subID); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	var in subscriptionInput
	if err := decode(r, &in); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	sub, err := h.cfg.Subscriptions.Update(r.Context(), acct, subID, in.domain())
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toSubscriptionJSON(sub))
}

func (h *Handler) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	if err := h.cfg.Subscriptions.Delete(r.Context(), accountFrom(r.Context()).ID, r.PathValue("subscriptionId")); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

func (h *Handler) rotateSecret(w http.ResponseWriter, r *http.Request) {
	sub, err := h.cfg.Subscriptions.RotateSecret(r.Context(), accountFrom(r.Context()).ID, r.PathValue("subscriptionId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"webhookSubscriptionId":   sub.ID,
		"endpointSecret":          sub.Secret,
		"previousSecretExpiresAt": sub.PrevSecretExpiresAt,
	})
}

type messageJSON struct {
	ID             string          `json:"id"`
	SubscriptionID string          `json:"subscriptionId"`
	EventType      string          `json:"eventType"`
	Status         string          `json:"status"`
	Attempts       int             `json:"attempts"`
	NextAttemptAt  *time.Time      `json:"nextAttemptAt"`
	LastStatusCode int             `json:"lastStatusCode,omitempty"`
	LastError      string          `json:"lastError,omitempty"`
	Payload        rawJSON         `json:"payload"`
	CreatedAt      time.Time       `json:"createdAt"`
	DeliveredAt    *time.Time      `json:"deliveredAt,omitempty"`
	Links          map[string]bool `json:"-"`
}

// rawJSON embeds stored JSON as is.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

func toMessageJSON(m *store.Message) messageJSON {
	return messageJSON{
		ID: m.ID, SubscriptionID: m.SubscriptionID, EventType: m.EventType, Status: m.Status, Attempts: m.Attempts,
		NextAttemptAt: optTime(m.NextAttemptAt), LastStatusCode: m.LastStatus, LastError: m.LastError,
		Payload: rawJSON(m.Payload), CreatedAt: m.CreatedAt, DeliveredAt: optTime(m.DeliveredAt),
	}
}

func (h *Handler) listMessages(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Message, error) {
		return h.cfg.Subscriptions.ListMessages(r.Context(), store.ListMessagesParams{
			AccountID: accountFrom(r.Context()).ID, SubscriptionID: r.PathValue("subscriptionId"), Page: p,
		})
	}, func(m *store.Message) int64 { return m.Seq }, toMessageJSON)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

type attemptJSON struct {
	ID          int64     `json:"id"`
	DeliveryID  string    `json:"deliveryId"`
	AttemptedAt time.Time `json:"attemptedAt"`
	StatusCode  int       `json:"statusCode"`
	LatencyMS   float64   `json:"latencyMs"`
	Error       string    `json:"error,omitempty"`
	Response    string    `json:"response"`
}

func (h *Handler) listAttempts(w http.ResponseWriter, r *http.Request) {
	pg, err := listPage(r, func(p store.Page) ([]*store.Attempt, error) {
		return h.cfg.Subscriptions.ListAttempts(r.Context(), store.ListAttemptsParams{
			AccountID: accountFrom(r.Context()).ID, MessageID: r.PathValue("messageId"), Page: p,
		})
	}, func(a *store.Attempt) int64 { return a.ID }, func(a *store.Attempt) attemptJSON {
		return attemptJSON{
			ID: a.ID, DeliveryID: a.DeliveryID, AttemptedAt: a.AttemptedAt, StatusCode: a.StatusCode,
			LatencyMS: float64(a.Latency.Microseconds()) / 1000, Error: a.Error, Response: a.Response,
		}
	})
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, pg)
}

func (h *Handler) redeliver(w http.ResponseWriter, r *http.Request) {
	m, err := h.cfg.Subscriptions.Redeliver(r.Context(), accountFrom(r.Context()).ID, r.PathValue("messageId"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusAccepted, toMessageJSON(m))
}

// The OneCal-shaped routes: the same subscriptions in the exact request and
// response shapes of OneCal's Calendar Subscriptions API.

type oneCalSubscription struct {
	ID               string    `json:"id"`
	Provider         string    `json:"provider"`
	URL              string    `json:"url"`
	CalendarID       *string   `json:"calendarId"`
	Expiration       *string   `json:"expiration"`
	SubscriptionID   string    `json:"subscriptionId"`
	ResourceID       *string   `json:"resourceId"`
	EndUserAccountID string    `json:"endUserAccountId"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

// toOneCalSubscription gives s in OneCal's shape, where the calendar is
// also the resource.
func toOneCalSubscription(s *store.Subscription) oneCalSubscription {
	o := oneCalSubscription{
		ID: s.ID, Provider: "CALHOOK", URL: s.URL, SubscriptionID: s.ID, EndUserAccountID: s.AccountID,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if s.CalendarID != "" {
		o.CalendarID, o.ResourceID = &s.CalendarID, &s.CalendarID
	}
	return o
}

// oneCalAccount checks that the path names the caller's own account.
func (h *Handler) oneCalAccount(r *http.Request) (string, error) {
	acct := accountFrom(r.Context()).ID
	if r.PathValue("endUserAccountId") != acct {
		return "", errNotFound
	}
	return acct, nil
}

// oneCalBody checks the path's account as oneCalAccount does and then
// decodes the request body into in. The account comes first so that a
// foreign account is a 404 even when the body is invalid.
func (h *Handler) oneCalBody(r *http.Request, in any) (string, error) {
	acct, err := h.oneCalAccount(r)
	if err != nil {
		return "", err
	}
	if err := decode(r, in); err != nil {
		return "", err
	}
	return acct, nil
}

func (h *Handler) listOneCal(w http.ResponseWriter, r *http.Request) {
	acct, err := h.oneCalAccount(r)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	// OneCal's list has no calendarId filter: a query's is ignored.
	pg, err := listPage(r, func(p store.Page) ([]*store.Subscription, error) {
		return h.cfg.Subscriptions.List(r.Context(), store.ListSubscriptionsParams{AccountID: acct, Page: p})
	}, subscriptionSeq, toOneCalSubscription)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	// OneCal answers null, not an absent field, on the last page.
	out := struct {
		Data          []oneCalSubscription `json:"data"`
		NextPageToken *string              `json:"nextPageToken"`
	}{Data: pg.Data}
	if pg.NextPageToken != "" {
		out.NextPageToken = &pg.NextPageToken
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) createOneCal(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CalendarID *string `json:"calendarId"`
		WebhookURL *string `json:"webhookUrl"`
		RateLimit  *int    `json:"rateLimit"`
	}
	acct, err := h.oneCalBody(r, &in)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if in.CalendarID == nil || *in.CalendarID == "" {
		writeError(w, r, h.log, errInvalid("calendarId: is required"))
		return
	}
	sub, err := h.cfg.Subscriptions.Create(r.Context(), acct, subscription.Input{
		CalendarID: in.CalendarID, URL: in.WebhookURL, RateLimit: in.RateLimit,
	}, subscription.OneCalEventTypes)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"webhookSubscriptionId": sub.ID, "endpointSecret": sub.Secret})
}

func (h *Handler) deleteOneCal(w http.ResponseWriter, r *http.Request) {
	var in struct {
		SubscriptionID string `json:"subscriptionId"`
	}
	acct, err := h.oneCalBody(r, &in)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	if in.SubscriptionID == "" {
		writeError(w, r, h.log, errInvalid("subscriptionId: is required"))
		return
	}
	if err := h.cfg.Subscriptions.Delete(r.Context(), acct, in.SubscriptionID); err != nil {
		writeError(w, r, h.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}
