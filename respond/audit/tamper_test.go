package audit

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
)

// twoSessions writes a signed log over two runs of five events each:
//
//	1 segment start, 2-6 events, 7 checkpoint close,
//	8 segment restart, 9-13 events, 14 checkpoint close
func twoSessions(t *testing.T) (string, [][]byte, ed25519.PublicKey) {
	t.Helper()
	priv, pub := testKey(t)
	o := testOptions(t.TempDir(), priv)
	writeLog(t, o, 5)
	path := writeLog(t, o, 5)
	lines := readLines(t, path)
	if len(lines) != 14 {
		t.Fatalf("%d lines, want 14", len(lines))
	}
	mustVerify(t, []string{path}, pub)
	return path, lines, pub
}

// rechain recomputes every prev, head and signature from line i (0-based)
// on, as a forger without the real key would after altering a record.
func rechain(t *testing.T, lines [][]byte, from int, key ed25519.PrivateKey) {
	t.Helper()
	hash := lineHash(lines[from])
	for i := from + 1; i < len(lines); i++ {
		r, err := parseRecord(bytes.TrimSuffix(lines[i], []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		r.Prev = hash
		if r.Kind == kindCheckpoint {
			r.Head = hash
			sign(&r, key)
		}
		var b bytes.Buffer
		if err := encode(&b, &r); err != nil {
			t.Fatal(err)
		}
		lines[i] = b.Bytes()
		hash = lineHash(lines[i])
	}
}

func TestTamperingIsNamed(t *testing.T) {
	forger, _ := testKey(t)
	cases := []struct {
		name   string
		tamper func(lines [][]byte) [][]byte
		line   int // the record Verify must name (1-based)
		reason string
	}{
		{"changed byte", func(l [][]byte) [][]byte {
			l[3] = bytes.Replace(l[3], []byte(`"user-2"`), []byte(`"user-X"`), 1)
			return l
		}, 4, "altered"},
		{"deleted record", func(l [][]byte) [][]byte { return slices.Delete(l, 3, 4) }, 4, "records missing"},
		{"two records reordered", func(l [][]byte) [][]byte { l[3], l[4] = l[4], l[3]; return l }, 4, "reordered"},
		{"tail cut after a checkpoint", func(l [][]byte) [][]byte { return l[:11] }, 11, "without a closing checkpoint"},
		{"final checkpoint missing", func(l [][]byte) [][]byte { return l[:13] }, 13, "without a closing checkpoint"},
		{"bad checkpoint signature", func(l [][]byte) [][]byte {
			l[13] = bytes.Replace(l[13], []byte(`"sig":"`), []byte(`"sig":"AA`), 1)
			return l
		}, 14, "signature"},
		{"forged checkpoint", func(l [][]byte) [][]byte {
			rechain(t, l, 12, forger)
			return l
		}, 14, "signature"},
		{"rewritten history", func(l [][]byte) [][]byte {
			l[3] = bytes.Replace(l[3], []byte(`"user-2"`), []byte(`"user-X"`), 1)
			rechain(t, l, 3, forger)
			return l
		}, 7, "signature"},
		{"changed byte in a prev", func(l [][]byte) [][]byte {
			i := bytes.Index(l[4], []byte(`"prev":"`)) + len(`"prev":"`)
			if l[4][i] == '0' { // one hex digit for another: still a well-formed record
				l[4][i] = '1'
			} else {
				l[4][i] = '0'
			}
			return l
		}, 5, "altered"},
		{"changed byte in the last event", func(l [][]byte) [][]byte {
			l[12] = bytes.Replace(l[12], []byte(`"user-4"`), []byte(`"user-Z"`), 1)
			return l
		}, 13, "altered"},
		{"checkpoint removed", func(l [][]byte) [][]byte { return slices.Delete(l, 6, 7) }, 7, "seq"},
		{"torn line in the middle", func(l [][]byte) [][]byte { l[5] = l[5][:20]; return l }, 6, "unreadable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, lines, pub := twoSessions(t)
			writeLines(t, path, c.tamper(lines))
			p := firstProblem(t, []string{path}, pub)
			if p.Line != c.line || p.File != path || !strings.Contains(p.Reason, c.reason) {
				t.Fatalf("first problem %v, want line %d (%q)", p, c.line, c.reason)
			}
		})
	}
}

// TestChangedByteNamesTheEvent: the problem carries the altered event's id.
func TestChangedByteNamesTheEvent(t *testing.T) {
	path, lines, pub := twoSessions(t)
	want := records(t, path)[3]
	lines[3] = bytes.Replace(lines[3], []byte(`"203.0.113.7"`), []byte(`"203.0.113.8"`), 1)
	writeLines(t, path, lines)
	for _, key := range []ed25519.PublicKey{pub, nil} { // the chain alone sees it too
		if p := firstProblem(t, []string{path}, key); p.ID != eventID(&want) || p.Line != 4 {
			t.Fatalf("problem %v, want line 4 id %s", p, eventID(&want))
		}
	}
}

// TestChainOnlyCannotSeeARewrite documents the limit of verifying without
// the public key: a forger who rewrites everything after a change and
// re-signs with their own key passes the chain check.
func TestChainOnlyCannotSeeARewrite(t *testing.T) {
	path, lines, _ := twoSessions(t)
	forger, _ := testKey(t)
	lines[3] = bytes.Replace(lines[3], []byte(`"user-2"`), []byte(`"user-X"`), 1)
	rechain(t, lines, 3, forger)
	writeLines(t, path, lines)
	mustVerify(t, []string{path}, nil)
}

// TestUnsignedLogVerifiesAsChain: without a key there are no checkpoints,
// and the chain still names an altered record.
func TestUnsignedLogVerifiesAsChain(t *testing.T) {
	path := writeLog(t, testOptions(t.TempDir(), nil), 5)
	rep := mustVerify(t, []string{path}, nil)
	if rep.Checkpoints != 0 || rep.Records != 7 { // start, 5 events, stop
		t.Fatalf("report %+v", rep)
	}
	lines := readLines(t, path)
	lines[2] = bytes.Replace(lines[2], []byte(`"user-1"`), []byte(`"user-Y"`), 1)
	writeLines(t, path, lines)
	if p := firstProblem(t, []string{path}, nil); p.Line != 3 {
		t.Fatalf("problem %v, want line 3", p)
	}
	_, pub := testKey(t)
	if p := firstProblem(t, []string{path}, pub); p.Line != 3 {
		t.Fatalf("with a key: %v", p)
	}
}
