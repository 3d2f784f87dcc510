package session

import (
	"net/http"
	"slices"
	"testing"
)

func TestTokenExtraction(t *testing.T) {
	got := func(f func(*tokenSet)) []string {
		var ts tokenSet
		f(&ts)
		if ts.overflow {
			return []string{"<overflow>"}
		}
		return append([]string(nil), ts.tok[:ts.n]...)
	}
	bearerCases := []struct {
		in   string
		want []string
	}{
		{"Bearer abc", []string{"abc"}},
		{"bearer  abc ", []string{"abc"}},
		{"BEARER abc", []string{"abc"}},
		{"Bearer\tabc", []string{"abc"}},
		{"Bearer abc=", []string{"abc"}},
		{"Bearer a=.b==.c+/=", []string{"a.b.c-_"}},
		{"Basic YWxhZGRpbjpvcGVu, Bearer abc", []string{"abc"}},
		{"Bearer abc def", []string{"abc", "def"}},
		{"Bearer a b c d e", []string{"<overflow>"}},
		{"Basic YWxhZGRpbjpvcGVu", nil},
		{"", nil},
		{"Bearer", nil},
		{"Bearerabc", nil},
	}
	for _, tc := range bearerCases {
		if g := got(func(ts *tokenSet) { bearerTokens(tc.in, false, ts) }); !slices.Equal(g, tc.want) {
			t.Errorf("bearerTokens(%q) = %q, want %q", tc.in, g, tc.want)
		}
	}
	if g := got(func(ts *tokenSet) { bearerTokens("abc", true, ts) }); !slices.Equal(g, []string{"abc"}) {
		t.Errorf("custom header bare token: %q", g)
	}
	if g := got(func(ts *tokenSet) { bearerTokens("abc def", true, ts) }); g != nil {
		t.Errorf("custom header with two words: %q", g)
	}
	cookieCases := []struct {
		name string
		hdr  []string
		want []string
	}{
		{"sid", []string{`a=1; sid="tok"`, "b=2"}, []string{"tok"}},
		{"sid", []string{"sid=a; sid=b"}, []string{"a", "b"}},
		{"sid", []string{"sid=a", "sid=a"}, []string{"a"}},
		{"sid", []string{`sid=x\y; sid=tok`}, []string{`x\y`, "tok"}},
		{"sid", []string{"sid =tok"}, []string{"tok"}},
		{"sid", []string{" sid = tok ;x=1"}, []string{"tok"}},
		{"sid", []string{"sid=%65yJ.a%2Eb"}, []string{"eyJ.a.b"}},
		{"sid", []string{"sid=%zz"}, []string{"%zz"}},
		{"sid", []string{"a=1,sid=tok"}, []string{"tok"}},
		{"sid", []string{"xsid=tok; sidx=tok2; s_id=tok3"}, nil},
		{"demo_session", []string{"demo.session=tok; demo[session=tok2"}, []string{"tok", "tok2"}},
		{"sid", []string{"sid=1;sid=2;sid=3;sid=4;sid=5"}, []string{"<overflow>"}},
		{"sid", []string{"sid="}, nil},
	}
	for _, tc := range cookieCases {
		if g := got(func(ts *tokenSet) { cookieTokens(http.Header{"Cookie": tc.hdr}, tc.name, ts) }); !slices.Equal(g, tc.want) {
			t.Errorf("cookieTokens(%q, %q) = %q, want %q", tc.hdr, tc.name, g, tc.want)
		}
	}
}

// FuzzTokens feeds arbitrary Authorization and Cookie values through the
// extractors (the handler-level FuzzTokenExtractor covers verification):
// never a panic, never more than maxCandidates tokens.
func FuzzTokens(f *testing.F) {
	f.Add("Bearer a.b.c", "sid=a.b.c")
	f.Add("bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.x", `sid="x"; sid=y`)
	f.Fuzz(func(t *testing.T, auth, cookies string) {
		var t1, t2, t3 tokenSet
		bearerTokens(auth, false, &t1)
		bearerTokens(auth, true, &t2)
		cookieTokens(http.Header{"Cookie": {cookies}}, "sid", &t3)
		for _, ts := range []tokenSet{t1, t2, t3} {
			if ts.n > maxCandidates {
				t.Fatalf("%d candidates", ts.n)
			}
		}
	})
}
