package alert

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Slack posts to a Slack incoming webhook: a Block Kit message (header,
// fields, details) with a plain `text` fallback for notifications.
type Slack struct{ URL string }

// NewSlack checks the incoming-webhook URL.
func NewSlack(url string) (*Slack, error) {
	if err := checkURL(url); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	return &Slack{URL: url}, nil
}

// Kind implements Sender.
func (s *Slack) Kind() string { return "slack" }

// Identity implements Sender.
func (s *Slack) Identity() string { return s.URL }

// Send implements Sender.
func (s *Slack) Send(ctx context.Context, m Message) error {
	return postJSON(ctx, s.URL, marshal(SlackMessage(m.Alert)), nil)
}

// slackEscape escapes the three characters Slack gives control meaning in
// message text. After it, user input cannot form <!channel>, <@U123> or
// <https://evil|click>; Slack renders the entities as the plain characters.
func slackEscape(s string) string {
	return slackEscaper.Replace(s)
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackNeutral additionally breaks what Slack parses in plain message text
// (the top-level fallback has no verbatim switch): a word joiner (U+2060,
// invisible) after "@" and "#" keeps @channel, @here, @user and #channel
// from becoming mentions or links, and one inside "://" keeps a URL from
// being linked.
var slackNeutral = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;",
	"@", "@\u2060", "#", "#\u2060", "://", ":\u2060//")

// mrkdwn is a text object whose text Slack shows as given: verbatim stops
// it from turning bare URLs, #channel and @mentions into links.
func mrkdwn(text string) map[string]any {
	return map[string]any{"type": "mrkdwn", "text": text, "verbatim": true}
}

// Block Kit limits: a field's text 2000, a section's text 3000, a header 150.
const (
	slackFieldMax   = 2000
	slackSectionMax = 3000
)

// SlackMessage renders the alert as a Slack message. Every piece of text
// that could come from a request (user, site, city, details) is escaped and
// sits in a verbatim text object, or (the fallback) is neutralised.
func SlackMessage(a Alert) map[string]any {
	type obj = map[string]any
	field := func(name, value string) obj {
		return mrkdwn(cut("*"+name+"*\n"+slackEscape(value), slackFieldMax))
	}
	fields := []any{field("Severity", a.Severity.String()), field("Type", string(a.Type))}
	if a.User != "" {
		fields = append(fields, field("User", a.User))
	}
	if a.IP != "" {
		fields = append(fields, field("IP", a.IP))
	}
	if loc := location(a); loc != "" {
		fields = append(fields, field("Location", loc))
	}
	if a.Site != "" {
		fields = append(fields, field("Site", a.Site))
	}
	fields = append(fields, field("Time", a.Time.UTC().Format("2006-01-02 15:04:05 MST")))
	blocks := []any{
		// the header holds only trusted text: severity and type
		obj{"type": "header", "text": obj{"type": "plain_text", "text": a.Severity.String() + " " + string(a.Type)}},
		obj{"type": "section", "fields": fields},
	}
	if d := detailLines(a.Details); d != "" {
		blocks = append(blocks, obj{"type": "section", "text": mrkdwn(cut(slackEscape(d), slackSectionMax))})
	}
	blocks = append(blocks, obj{"type": "context", "elements": []any{
		mrkdwn(slackEscape("Vigil alert " + a.ID + " · dedup " + a.DedupKey)),
	}})
	return obj{
		"text":   cut(slackNeutral.Replace("Vigil: "+a.Summary()), slackSectionMax),
		"blocks": blocks,
		// never let Slack turn URLs or names in our text into links/mentions
		"unfurl_links": false, "unfurl_media": false, "parse": "none", "link_names": false,
	}
}

// location is "City, Country (ASN n)" with what is known.
func location(a Alert) string {
	var parts []string
	if a.City != "" {
		parts = append(parts, a.City)
	}
	if a.Country != "" {
		parts = append(parts, a.Country)
	}
	loc := strings.Join(parts, ", ")
	if a.ASN != 0 {
		loc = strings.TrimSpace(loc + " (AS" + strconv.FormatUint(uint64(a.ASN), 10) + ")")
	}
	return loc
}

// detailLines renders details as "key: value" lines in key order.
func detailLines(d map[string]any) string {
	if len(d) == 0 {
		return ""
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := d[k]
		s, ok := v.(string)
		if !ok {
			s = string(marshal(v))
		}
		fmt.Fprintf(&b, "%s: %s\n", k, cut(s, 300))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Label implements Sender.
func (s *Slack) Label() string { return "slack " + redactURL(s.URL) }
