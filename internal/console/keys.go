package console

import (
	"net/http"

	"github.com/calhook/calhook/internal/account"
	"github.com/calhook/calhook/internal/store"
)

type keysData struct {
	Keys []*store.APIKey
	// Current is the key this session was opened with.
	Current string
	Created *account.CreatedKey
}

func (h *Handler) keysPage(w http.ResponseWriter, r *http.Request, v *view) {
	h.showKeys(w, r, v, http.StatusOK, nil)
}

func (h *Handler) showKeys(w http.ResponseWriter, r *http.Request, v *view, status int, created *account.CreatedKey) {
	keys, err := h.cfg.Accounts.ListKeys(r.Context(), v.accountID())
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	h.render(w, r, v, status, "keys", &pageData{Title: "API keys", Nav: "keys", Data: &keysData{
		Keys: keys, Current: v.sess.KeyID, Created: created,
	}})
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request, v *view) {
	k, err := h.cfg.Accounts.CreateKey(r.Context(), v.accountID(), r.PostFormValue("name"))
	if err != nil {
		h.renderError(w, r, v, err)
		return
	}
	h.showKeys(w, r, v, http.StatusCreated, k)
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, v *view) {
	if err := h.cfg.Accounts.RevokeKey(r.Context(), v.accountID(), r.PathValue("keyId")); err != nil {
		h.renderError(w, r, v, err)
		return
	}
	redirect(w, r, "/console/keys", "revoked")
}
