package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/calhook/calhook/internal/fault"
	"github.com/calhook/calhook/internal/store"
)

// apiError is a failure of the HTTP exchange itself (authentication, media
// type, method, a disabled feature), with the status and code the client
// sees. Failures of the domain are *fault.Error values, mapped by
// faultResponse.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

var errNotFound error = &fault.Error{Code: fault.NotFound, Message: "not found"}

var errMethodNotAllowed = &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "the route does not take this method: see the Allow header"}

func errInvalid(format string, args ...any) error {
	return fault.Invalidf("", format, args...)
}

func errUnauthorized(msg string) error {
	return &apiError{http.StatusUnauthorized, "unauthorized", msg}
}

func errForbidden(msg string) error {
	return &fault.Error{Code: fault.Forbidden, Message: msg}
}

func errorBody(code, message string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": message}}
}

// faultStatus maps each fault code to its status and JSON error code.
var faultStatus = map[fault.Code]struct {
	status int
	code   string
}{
	fault.Invalid:     {http.StatusBadRequest, "invalid_request"},
	fault.NotFound:    {http.StatusNotFound, "not_found"},
	fault.Conflict:    {http.StatusConflict, "conflict"},
	fault.Gone:        {http.StatusGone, "gone"},
	fault.Forbidden:   {http.StatusForbidden, "forbidden"},
	fault.RateLimited: {http.StatusTooManyRequests, "rate_limited"},
	fault.Unavailable: {http.StatusServiceUnavailable, "unavailable"},
}

// reasonCodes are the JSON error codes of the reasons clients tell apart.
var reasonCodes = map[fault.Reason]string{
	fault.ReadOnly:          "read_only",
	fault.Disabled:          "subscription_disabled",
	fault.CursorExpired:     "cursor_expired",
	fault.StorageFull:       "storage_full",
	fault.DatabaseDown:      "database_unavailable",
	fault.ShuttingDown:      "shutting_down",
	fault.SubscriptionLimit: "subscription_limit",
	fault.NotImported:       "not_imported",
	fault.NothingHeld:       "nothing_held",
	fault.HoldExpired:       "hold_expired",
	fault.HoldReleased:      "hold_released",
	fault.HoldConfirmed:     "hold_confirmed",
	fault.KeyReused:         "idempotency_key_reused",
	fault.KeyInUse:          "idempotency_key_in_use",
	fault.InBatch:           "duplicate_in_batch",
}

// retryAfter is the Retry-After, in seconds, of the answers to a
// condition of the database (space is freed by a person, a restarting
// database is back in seconds) or of the server (another node can answer
// at once).
var retryAfter = map[fault.Reason]string{
	fault.StorageFull:  "60",
	fault.DatabaseDown: "5",
	fault.ShuttingDown: "1",
}

// faultResponse returns the response to a domain failure.
func faultResponse(fe *fault.Error) *apiError {
	st, ok := faultStatus[fe.Code]
	if !ok {
		return nil
	}
	code := st.code
	if c, ok := reasonCodes[fe.Reason]; ok {
		code = c
	}
	return &apiError{st.status, code, fe.Message}
}

// writeError maps err to a status in one place. Only unexpected errors are
// logged, and their details never reach the client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var (
		ae  *apiError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &mbe):
		ae = &apiError{http.StatusRequestEntityTooLarge, "payload_too_large",
			fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	default:
		if fe := fault.As(err); fe != nil {
			ae = faultResponse(fe)
			switch {
			case fe.Code == fault.Unavailable:
				w.Header().Set("Retry-After", retryAfter[fe.Reason])
				if _, ok := conditionText[fe.Reason]; ok { // a condition of the database
					noteCondition(w, fe.Reason)
				}
			case ae != nil && fe.RetryAfter > 0:
				// Whole seconds, rounded up: a client that waits as told
				// is accepted.
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(fe.RetryAfter.Seconds()))))
			}
		}
	}
	if ae == nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", r.Pattern, "error", err)
		ae = &apiError{http.StatusInternalServerError, "internal", "internal error"}
	}
	if ae.status == http.StatusRequestTimeout {
		w.Header().Set("Connection", "close") // the rest of the body may still come
	}
	writeJSON(w, ae.status, errorBody(ae.code, ae.message))
}

// writeJSON writes v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads a JSON object into v, refusing unknown fields, keys given
// twice or in another case than the field's (see checkKeys), trailing
// data and other media types. An empty body decodes as {} when allowEmpty.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json"}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if ne := net.Error(nil); errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			// The server's read timeout ended a body that did not arrive.
			return &apiError{http.StatusRequestTimeout, "request_timeout", "the request body did not arrive in time"}
		}
		return err // a *http.MaxBytesError becomes 413
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return errInvalid("request body is empty: send a JSON object")
	}
	if err := checkKeys(body, reflect.TypeOf(v)); err != nil {
		return errInvalid("malformed JSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errInvalid("malformed JSON: %s", jsonProblem(err))
	}
	if dec.More() {
		return errInvalid("malformed JSON: unexpected data after the object")
	}
	return nil
}

// jsonProblem turns a decoder error into a message for the client.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonType(te.Type.String()), te.Value)
		}
		return fmt.Sprintf("expected a JSON object, not %s", te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of a value"
	}
	return err.Error()
}

func jsonType(goType string) string {
	switch {
	case strings.Contains(goType, "string"):
		if strings.HasPrefix(goType, "[]") || strings.HasPrefix(goType, "*[]") {
			return "an array of strings"
		}
		if strings.HasPrefix(goType, "map") || strings.HasPrefix(goType, "*map") {
			return "an object of strings"
		}
		return "a string"
	case strings.Contains(goType, "bool"):
		return "a boolean"
	case strings.Contains(goType, "int"):
		return "an integer"
	}
	return goType
}

// Pagination.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// pageParams reads limit and pageToken. Page tokens are opaque to clients:
// the base64 of the position after which the next page starts.
func pageParams(r *http.Request) (store.Page, error) {
	p := store.Page{Limit: defaultLimit}
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			return p, errInvalid("limit must be an integer from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	if s := q.Get("pageToken"); s != "" {
		after, err := decodeCursor(s)
		if err != nil {
			return p, errInvalid("pageToken is not one this server issued")
		}
		p.After = after
	}
	return p, nil
}

func encodeCursor(n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("p" + strconv.FormatInt(n, 10)))
}

func decodeCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'p' {
		return 0, errors.New("bad cursor")
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("bad cursor")
	}
	return n, nil
}

// encodeChangeCursor encodes a position in the change log: as a page
// cursor when the store orders its log by change id alone, else with the
// transaction id first.
func encodeChangeCursor(p store.ChangePos) string {
	if p.TxID == 0 {
		return encodeCursor(p.ID)
	}
	return base64.RawURLEncoding.EncodeToString([]byte("x" + strconv.FormatUint(p.TxID, 10) + "." + strconv.FormatInt(p.ID, 10)))
}

func decodeChangeCursor(s string) (store.ChangePos, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'x' {
		id, err := decodeCursor(s)
		return store.ChangePos{ID: id}, err
	}
	tx, id, ok := strings.Cut(string(b[1:]), ".")
	if !ok {
		return store.ChangePos{}, errors.New("bad cursor")
	}
	var p store.ChangePos
	if p.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil || p.TxID == 0 {
		return store.ChangePos{}, errors.New("bad cursor")
	}
	if p.ID, err = strconv.ParseInt(id, 10, 64); err != nil || p.ID < 0 {
		return store.ChangePos{}, errors.New("bad cursor")
	}
	return p, nil
}

// page is the JSON shape of a list.
type page[T any] struct {
	Data          []T    `json:"data"`
	NextPageToken string `json:"nextPageToken,omitempty"`
}

// newPage builds a page from limit+1 fetched rows; seq gives each row's
// position.
func newPage[R, T any](rows []R, limit int, seq func(R) int64, conv func(R) T) page[T] {
	p := page[T]{Data: make([]T, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			p.NextPageToken = encodeCursor(seq(rows[limit-1]))
			break
		}
		p.Data = append(p.Data, conv(r))
	}
	return p
}

// listPage serves one page of a list by the request's limit and pageToken:
// list fetches limit+1 rows from the store, so that the extra row tells
// whether there is a next page, and newPage builds the page from them.
func listPage[R, T any](r *http.Request, list func(store.Page) ([]R, error), seq func(R) int64, conv func(R) T) (page[T], error) {
	p, err := pageParams(r)
	if err != nil {
		return page[T]{}, err
	}
	limit := p.Limit
	p.Limit++
	rows, err := list(p)
	if err != nil {
		return page[T]{}, err
	}
	return newPage(rows, limit, seq, conv), nil
}
