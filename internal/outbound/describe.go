package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
)

// RedirectError is a redirect hop the client refused to follow. Its
// message names the hop and the reason in full (for the operator's log);
// [Describe] gives the quiet form.
type RedirectError struct {
	// Hop is the number of the refused redirect, from 1.
	Hop int
	// Err is why: a [*URLError], or ErrTooManyRedirects.
	Err error
}

// Error implements error.
func (e *RedirectError) Error() string { return fmt.Sprintf("redirect %d refused: %v", e.Hop, e.Err) }

// Unwrap returns e.Err.
func (e *RedirectError) Unwrap() error { return e.Err }

// ErrTooManyRedirects is wrapped by a [RedirectError] for a hop past the
// client's MaxRedirects.
var ErrTooManyRedirects = errors.New("too many redirects")

// Describe says what kind of failure err is, in words any tenant may read:
// a forbidden address, a DNS failure, a refused or reset connection, a TLS
// failure, a timeout. It never repeats an address calhook resolved, the
// resolver's address or a raw dial error, which would let a tenant map
// the network calhook runs in; the full error belongs in the operator's
// log. A URL refused for its form (scheme, credentials, port) is
// described by the reason, which says only what the URL itself says.
func Describe(err error) string {
	var re *RedirectError
	if errors.As(err, &re) {
		if errors.Is(re.Err, ErrTooManyRedirects) {
			return re.Error() // "redirect 6 refused: too many redirects: stopped after 5 …"
		}
		return fmt.Sprintf("redirect %d refused: %s", re.Hop, describe(re.Err))
	}
	return describe(err)
}

func describe(err error) string {
	var (
		ue   *URLError
		dnse *net.DNSError
		cve  *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
		rhe  tls.RecordHeaderError
		ae   tls.AlertError
		ne   net.Error
	)
	switch {
	case errors.As(err, &ue) && ue.Err == nil:
		return ue.Reason // the URL's own form: says nothing about the network
	case errors.As(err, &ue) && ue.quiet != "":
		return "forbidden address: " + ue.quiet
	case errors.Is(err, ErrForbiddenAddress):
		return "forbidden address: the host is not a public address"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timed out"
	case errors.As(err, &dnse):
		if dnse.IsNotFound {
			return fmt.Sprintf("DNS failure: %s not found", dnse.Name)
		}
		return fmt.Sprintf("DNS failure: cannot resolve %s", dnse.Name)
	case errors.As(err, &hne):
		return "TLS failure: the certificate is not valid for this host"
	case errors.As(err, &uae):
		return "TLS failure: the certificate is signed by an unknown authority"
	case errors.As(err, &cie):
		return "TLS failure: invalid certificate"
	case errors.As(err, &cve):
		return "TLS failure: the certificate could not be verified"
	case errors.As(err, &rhe):
		return "TLS failure: the server does not speak TLS"
	case errors.As(err, &ae):
		return "TLS failure: the handshake failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before the response was complete"
	}
	var ue2 *url.Error
	if errors.As(err, &ue2) {
		switch {
		case errors.Is(ue2.Err, context.Canceled):
			return "canceled"
		case strings.Contains(ue2.Err.Error(), "server gave HTTP response to HTTPS client"):
			// net/http's own error has no type to match.
			return "TLS failure: the server does not speak TLS"
		}
	}
	return "connection failed"
}
