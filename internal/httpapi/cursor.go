package httpapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"

	"github.com/calhook/calhook/internal/store"
)

// cursorCodec makes change cursors opaque per account. A position in the
// change log is one sequence across all accounts, so handing it out as
// is would tell a tenant how busy the others are. Each account gets its
// own key, derived from the server's secret: the 16-byte position is
// encrypted as one AES block (a permutation, so equal positions give
// equal cursors and nothing else can be read from them) and tagged with
// an HMAC, so a cursor of another account, or a made-up one, is refused.
// Cursors issued before this scheme (plain positions) keep working.
type cursorCodec struct {
	secret []byte
}

// newCursorCodec returns a codec keyed by secret; with no secret it makes
// a random one, whose cursors last as long as the process.
func newCursorCodec(secret []byte) cursorCodec {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		rand.Read(secret) // never returns an error; it crashes the program instead
	}
	return cursorCodec{secret: secret}
}

// cursorVersion starts an opaque cursor's bytes.
const cursorVersion = 'k'

// cursorLen is the length of an opaque cursor's bytes: the version, the
// encrypted block and an 8-byte tag.
const cursorLen = 1 + aes.BlockSize + 8

// keys derives the account's encryption and MAC keys.
func (c cursorCodec) keys(accountID string) (cipher.Block, []byte) {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte("calhook change cursor\x00" + accountID))
	k := m.Sum(nil)
	block, _ := aes.NewCipher(k[:16]) // a 16-byte key never fails
	return block, k[16:]
}

// encode returns the account's cursor of a position.
func (c cursorCodec) encode(accountID string, p store.ChangePos) string {
	block, mac := c.keys(accountID)
	var plain [aes.BlockSize]byte
	binary.BigEndian.PutUint64(plain[:8], p.TxID)
	binary.BigEndian.PutUint64(plain[8:], uint64(p.ID))
	out := make([]byte, 1, cursorLen)
	out[0] = cursorVersion
	out = append(out, make([]byte, aes.BlockSize)...)
	block.Encrypt(out[1:], plain[:])
	out = append(out, tag(mac, out[1:1+aes.BlockSize])...)
	return base64.RawURLEncoding.EncodeToString(out)
}

// decode returns the position of an account's cursor, or of a cursor
// issued before cursors were opaque.
func (c cursorCodec) decode(accountID, s string) (store.ChangePos, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen || b[0] != cursorVersion {
		return decodeChangeCursor(s) // the plain cursors of earlier versions
	}
	block, mac := c.keys(accountID)
	ct := b[1 : 1+aes.BlockSize]
	if !hmac.Equal(tag(mac, ct), b[1+aes.BlockSize:]) {
		return store.ChangePos{}, errors.New("bad cursor")
	}
	var plain [aes.BlockSize]byte
	block.Decrypt(plain[:], ct)
	p := store.ChangePos{TxID: binary.BigEndian.Uint64(plain[:8]), ID: int64(binary.BigEndian.Uint64(plain[8:]))}
	if p.ID < 0 {
		return store.ChangePos{}, errors.New("bad cursor")
	}
	return p, nil
}

func tag(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)[:8]
}
