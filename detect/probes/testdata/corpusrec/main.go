// Command corpusrec records the scanner part of the probe corpus: it runs
// real attack tools (gobuster, ffuf, dirb, sqlmap; nikto when installed)
// against a small site on loopback and writes every request they sent, with
// the status the site answered, in the corpus format (see ../README.md).
//
// The site answers a few pages (/, /about, /search?q=, /item?id=N, /login)
// and 404 for everything else, as an ordinary application does. Each run of
// a tool is one source; only the first -max requests of a run are kept, as
// the detectors decide within far fewer.
//
//	go run ./detect/probes/testdata/corpusrec -out detect/probes/testdata/corpus/tools.tsv
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"html"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// browserUA is what an attacker sends instead of the tool's own agent.
const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

type run struct {
	id      string
	tool    string
	args    func(base, words string) []string
	timeout time.Duration
}

func runs() []run {
	const common = "/usr/share/dirb/wordlists/common.txt"
	gob := func(extra ...string) func(string, string) []string {
		return func(base, _ string) []string {
			return append([]string{"dir", "-u", base, "-w", common, "-q", "--no-error"}, extra...)
		}
	}
	ff := func(path string, extra ...string) func(string, string) []string {
		return func(base, _ string) []string {
			return append([]string{"-u", base + path, "-w", common, "-s", "-mc", "all"}, extra...)
		}
	}
	sq := func(target string, extra ...string) func(string, string) []string {
		return func(base, _ string) []string {
			return append([]string{"-u", base + target, "--batch", "--flush-session", "--disable-coloring"}, extra...)
		}
	}
	return []run{
		{"tool/gobuster-own-agent", "gobuster", gob("-t", "10"), 30 * time.Second},
		{"tool/gobuster-browser-agent", "gobuster", gob("-t", "10", "-a", browserUA), 30 * time.Second},
		{"tool/gobuster-extensions", "gobuster", gob("-t", "10", "-a", browserUA, "-x", "php,bak,zip,old"), 30 * time.Second},
		{"tool/gobuster-slow", "gobuster", gob("-t", "1", "--delay", "500ms", "-a", browserUA), 40 * time.Second},
		{"tool/gobuster-very-slow", "gobuster", gob("-t", "1", "--delay", "3s", "-a", browserUA), 100 * time.Second},
		{"tool/ffuf-own-agent", "ffuf", ff("/FUZZ"), 30 * time.Second},
		{"tool/ffuf-browser-agent", "ffuf", ff("/FUZZ", "-H", "User-Agent: "+browserUA), 30 * time.Second},
		{"tool/ffuf-css-suffix", "ffuf", ff("/FUZZ.css", "-H", "User-Agent: "+browserUA), 30 * time.Second},
		{"tool/ffuf-delay-300ms", "ffuf", ff("/FUZZ", "-H", "User-Agent: "+browserUA, "-p", "0.3", "-t", "1"), 40 * time.Second},
		{"tool/ffuf-extensions", "ffuf", ff("/FUZZ", "-H", "User-Agent: "+browserUA, "-e", ".php,.bak,.sql,.zip"), 30 * time.Second},
		{"tool/dirb-default", "dirb", func(base, _ string) []string { return []string{base + "/", common, "-S", "-r"} }, 30 * time.Second},
		{"tool/dirb-php-extension", "dirb", func(base, _ string) []string {
			return []string{base + "/", common, "-S", "-r", "-X", ".php", "-a", browserUA}
		}, 30 * time.Second},
		{"tool/dirb-cgis", "dirb", func(base, _ string) []string {
			return []string{base + "/", "/usr/share/dirb/wordlists/vulns/cgis.txt", "-S", "-r", "-a", browserUA}
		}, 30 * time.Second},
		{"tool/dirb-tomcat-delay", "dirb", func(base, _ string) []string {
			return []string{base + "/", "/usr/share/dirb/wordlists/vulns/tomcat.txt", "-S", "-r", "-z", "200", "-a", browserUA}
		}, 40 * time.Second},
		{"tool/sqlmap-own-agent", "sqlmap", sq("/item?id=1"), 90 * time.Second},
		{"tool/sqlmap-random-agent", "sqlmap", sq("/item?id=1", "--random-agent"), 90 * time.Second},
		{"tool/sqlmap-search-level2", "sqlmap", sq("/search?q=shoes", "--random-agent", "--level", "2"), 90 * time.Second},
		{"tool/sqlmap-search-level1", "sqlmap", sq("/search?q=shoes", "--random-agent"), 90 * time.Second},
		{"tool/sqlmap-union-only", "sqlmap", sq("/item?id=1", "--random-agent", "--technique", "U"), 90 * time.Second},
		{"tool/sqlmap-time-delay", "sqlmap", sq("/item?id=1", "--random-agent", "--delay", "1", "--technique", "BT"), 90 * time.Second},
		{"tool/nikto", "nikto", func(base, _ string) []string { return []string{"-h", base, "-nointeractive"} }, 60 * time.Second},
	}
}

// entry is one recorded request.
type entry struct {
	at                 time.Time
	method, target, ua string
	status             int
	site, mode, dest   string
}

type recorder struct {
	mu      sync.Mutex
	entries []entry
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status := site(w, r)
	rec.mu.Lock()
	rec.entries = append(rec.entries, entry{
		at: time.Now(), method: r.Method, target: r.RequestURI, ua: r.UserAgent(), status: status,
		site: r.Header.Get("Sec-Fetch-Site"), mode: r.Header.Get("Sec-Fetch-Mode"), dest: r.Header.Get("Sec-Fetch-Dest"),
	})
	rec.mu.Unlock()
}

// site is the application under scan: a handful of pages, 404 elsewhere.
func site(w http.ResponseWriter, r *http.Request) int {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page := func(status int, body string) int {
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><html><head><title>Shop</title></head><body>%s</body></html>\n", body)
		return status
	}
	switch r.URL.Path {
	case "/", "/index.html":
		return page(200, `<h1>Shop</h1><a href="/about">About</a> <a href="/item?id=1">Item 1</a> <form action="/search"><input name="q"></form>`)
	case "/about":
		return page(200, "<p>A small shop.</p>")
	case "/login":
		return page(200, `<form method="post"><input name="user"><input name="password" type="password"></form>`)
	case "/search":
		return page(200, "<p>No results for "+html.EscapeString(r.URL.Query().Get("q"))+"</p>")
	case "/item":
		n, err := strconv.Atoi(r.URL.Query().Get("id"))
		if err != nil || n < 1 || n > 50 {
			return page(404, "<p>No such item.</p>")
		}
		return page(200, fmt.Sprintf("<h1>Item %d</h1><p>Price: %d.00</p>", n, 10+n*3))
	}
	return page(404, "<p>Not found.</p>")
}

func main() {
	out := flag.String("out", "tools.tsv", "corpus file to write")
	maxPer := flag.Int("max", 300, "requests kept per run")
	only := flag.String("only", "", "run only the sources whose id contains this")
	flag.Parse()
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "# Recorded by corpusrec: real tools on loopback against a site that answers 404 for unknown paths.")
	fmt.Fprintln(w, "# source\ttime_s\tmethod\ttarget\tstatus\tsec-fetch-site\tsec-fetch-mode\tsec-fetch-dest\tuser-agent")
	for _, rn := range runs() {
		if *only != "" && !strings.Contains(rn.id, *only) {
			continue
		}
		path, err := exec.LookPath(rn.tool)
		if err != nil {
			log.Printf("%s: %s not installed, skipped", rn.id, rn.tool)
			continue
		}
		entries, err := record(path, rn)
		if err != nil {
			log.Printf("%s: %v", rn.id, err)
		}
		if len(entries) == 0 {
			log.Printf("%s: no requests recorded", rn.id)
			continue
		}
		if len(entries) > *maxPer {
			entries = entries[:*maxPer]
		}
		log.Printf("%s: %d requests kept", rn.id, len(entries))
		start := entries[0].at
		for _, e := range entries {
			fmt.Fprintf(w, "%s\t%.3f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", rn.id, e.at.Sub(start).Seconds(), e.method,
				field(e.target), e.status, field(e.site), field(e.mode), field(e.dest), field(e.ua))
		}
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// field keeps a value on its line and its column: "-" for empty.
func field(s string) string {
	if s == "" {
		return "-"
	}
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

// record serves the site on a fresh loopback port while one tool runs.
func record(path string, rn run) ([]entry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rec := &recorder{}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	base := "http://" + l.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), rn.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "corpusrec-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, path, rn.args(base, "")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.WaitDelay = 2 * time.Second
	outb, err := cmd.CombinedOutput()
	if err != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		log.Printf("%s: %v\n%s", rn.id, err, tail(outb))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]entry(nil), rec.entries...), nil
}

func tail(b []byte) string {
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}
