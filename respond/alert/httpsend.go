package alert

import (
	"bytes"
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
)

// httpClient is shared by the HTTP channels. It never follows redirects: a
// webhook that moved is a configuration problem to surface, and following
// one would re-post a signed body to wherever the Location points.
// Per-attempt timeouts come from the context.
var httpClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	},
}

// checkURL accepts only absolute http(s) URLs with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid URL %q: want http:// or https:// with a host", raw)
	}
	return nil
}

// postJSON posts body and classifies the answer: 2xx is success; 410
// disables the endpoint; other 4xx except 408 and 429 are permanent; the
// rest (5xx, 408, 429, 3xx, network errors) are retried, after Retry-After
// when the receiver gave one.
func postJSON(ctx context.Context, target string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return &DeliveryError{Permanent: true, Err: fmt.Errorf("building request: %w", err)}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Vigil-Alerts/1")
	resp, err := httpClient.Do(req)
	if err != nil {
		return &DeliveryError{Err: fmt.Errorf("posting: %w", err)}
	}
	defer resp.Body.Close()
	// read a little for the error message, then drop the rest so the
	// connection can be reused; a huge answer is not our business
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	de := &DeliveryError{
		Status:     resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Err:        errors.New(strings.TrimSpace(string(bytes.ToValidUTF8(snippet, nil)))),
	}
	switch {
	case resp.StatusCode == http.StatusGone:
		de.Gone, de.Permanent = true, true
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		de.Permanent = true
	}
	return de
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unparseable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
