package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
)

// transientInfo describes a retryable failure.
type transientInfo struct {
	retryAfter time.Duration // 0 when the server did not say
}

// classify tells whether err is a transport failure worth retrying. HTTP
// errors are transient only for 408, 409, 429 and 5xx. Failures below HTTP
// (refused or reset connection, attempt timeout, cut-off body) are transient
// too; anything else (a request the SDK would not build, a 200 answer that is
// not the provider's JSON) is a configuration problem and is not retried.
func classify(err error) (transientInfo, bool) {
	status, hdr, ok := httpStatus(err)
	if !ok {
		var urlErr *url.Error
		var netErr net.Error
		transport := errors.As(err, &urlErr) || errors.As(err, &netErr) ||
			errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
		return transientInfo{}, transport
	}
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooManyRequests, status >= 500:
		return transientInfo{retryAfter: retryAfter(hdr)}, true
	}
	return transientInfo{}, false
}

// httpStatus extracts the HTTP status and headers from either SDK's error.
func httpStatus(err error) (int, http.Header, bool) {
	var oe *openai.Error
	if errors.As(err, &oe) {
		return oe.StatusCode, respHeader(oe.Response), true
	}
	var ae *anthropic.Error
	if errors.As(err, &ae) {
		return ae.StatusCode, respHeader(ae.Response), true
	}
	return 0, nil, false
}

func respHeader(r *http.Response) http.Header {
	if r == nil {
		return nil
	}
	return r.Header
}

// retryAfter reads retry-after-ms (OpenAI) or Retry-After in seconds; an
// HTTP-date form is ignored and our own backoff applies.
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			return time.Duration(s * float64(time.Second))
		}
	}
	return 0
}

// permanentError explains an HTTP error that retrying cannot fix.
func permanentError(provider, model string, err error) error {
	status, _, ok := httpStatus(err)
	if !ok {
		return fmt.Errorf("llm: %s %s: no usable answer and no provider error; check base_url: %w", provider, model, err)
	}
	var hint string
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = "the API key was refused; check " + keyEnv(provider)
	case http.StatusNotFound:
		hint = fmt.Sprintf("unknown model %q or wrong base_url", model)
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		hint = "the request was rejected; check the model name and llm settings (temperature, max_tokens, reasoning_effort, thinking_budget)"
	default:
		hint = "the provider refused the request"
	}
	return fmt.Errorf("llm: %s %s: HTTP %d: %s: %w", provider, model, status, hint, err)
}

func keyEnv(provider string) string {
	switch provider {
	case ProviderAnthropic:
		return "ANTHROPIC_API_KEY"
	case ProviderGoogle:
		return "GOOGLE_API_KEY or GEMINI_API_KEY"
	}
	return strings.ToUpper(provider) + "_API_KEY"
}
