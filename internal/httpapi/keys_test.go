package httpapi_test

import (
	"net/http"
	"testing"
)

func TestAPIKeys(t *testing.T) {
	s := newServer(t)
	a := s.newAccount("Acme")
	other := s.newAccount("Other")

	list := s.must(http.StatusOK, "GET", "/v1/api-keys", a.key, nil)
	keys := list["data"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["name"] != "default" || keys[0].(map[string]any)["key"] != nil {
		t.Fatalf("keys of a new account = %v; want only the default key, without its secret", keys)
	}
	defaultID := keys[0].(map[string]any)["id"].(string)

	for _, bad := range []any{map[string]any{}, map[string]any{"name": ""}, `{"name":`, map[string]any{"name": 5}} {
		if r := s.do("POST", "/v1/api-keys", a.key, bad); r.status != http.StatusBadRequest {
			t.Errorf("POST /v1/api-keys %v: status %d; want 400", bad, r.status)
		}
	}
	created := s.must(http.StatusCreated, "POST", "/v1/api-keys", a.key, map[string]any{"name": "rotation"})
	newKey, _ := created["key"].(string)
	if newKey == "" || created["id"] == "" {
		t.Fatalf("created key = %v; want its secret once", created)
	}
	// The new key works, the default one is revoked, and stops at once.
	s.must(http.StatusOK, "GET", "/v1/calendars", newKey, nil)
	if r := s.do("DELETE", "/v1/api-keys/"+defaultID, other.key, nil); r.status != http.StatusNotFound {
		t.Errorf("another account revoking the key: status %d; want 404", r.status)
	}
	if r := s.do("DELETE", "/v1/api-keys/"+defaultID, newKey, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: status %d", r.status)
	}
	if r := s.do("GET", "/v1/calendars", a.key, nil); r.status != http.StatusUnauthorized {
		t.Errorf("revoked key: status %d; want 401", r.status)
	}
	list = s.must(http.StatusOK, "GET", "/v1/api-keys", newKey, nil)
	keys = list["data"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["lastUsedAt"] == nil {
		t.Errorf("keys after the rotation = %v; want the new key, used", keys)
	}
}

func TestPortalLinksWithoutConsole(t *testing.T) {
	s := newServer(t)
	a := s.newAccount("Acme")
	if r := s.do("POST", "/v1/portal-links", a.key, map[string]any{}); r.status != http.StatusForbidden {
		t.Errorf("portal link on a server without the console: status %d; want 403", r.status)
	}
	if r := s.do("POST", "/v1/portal-links", "", map[string]any{}); r.status != http.StatusUnauthorized {
		t.Errorf("portal link without a key: status %d; want 401", r.status)
	}
}
