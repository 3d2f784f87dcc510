package main

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
)

// The shop the benign sources visit: pages, their assets (some of them
// missing, as on any real site), dead links, downloads that exist.
var (
	sitePages = []string{
		"/", "/products", "/products/shoes", "/products/bags", "/blog", "/blog/how-we-source-leather",
		"/blog/restore-from-backup", "/about", "/contact", "/faq", "/cart", "/account",
	}
	deadLinks = []string{
		"/old-collection", "/promo/2023-black-friday", "/blog/2019/our-story", "/careers", "/press",
		"/gift-cards", "/stores/paris", "/products/sandals", "/blog/winter-sale", "/newsletter/unsubscribe-old",
	}
	downloads = []string{
		"/downloads/catalog-2024.pdf", "/blog/restore-from-backup.sql.gz", "/downloads/www.zip", "/downloads/schema.sql",
		"/downloads/backup.zip", "/downloads/sample-db.sql", "/downloads/composer.json",
	}
	searches = []string{
		"leather bag", "shoes size 42", "return policy", "gift card", "black boots", "wallet",
	}
	securitySearches = []string{
		"how to use union select in mysql", "' or 1=1 meaning", "<script> tag tutorial", "what does ' OR '1'='1 do",
		"sleep() in python", "javascript:alert example", "union select vs union all select", "etc/passwd file format",
		"drop table students xkcd", "benchmark( function in mysql", "../../ relative path meaning", "<svg> icons tutorial",
		"information_schema tables list", "escape <script> in html",
	}
)

// asset is a subresource a page loads.
type asset struct {
	target     string
	status     int
	mode, dest string
}

func commonAssets() []asset {
	return []asset{
		{"/static/css/site.3f2a1b.css", 200, "no-cors", "style"},
		{"/static/css/print.css", 404, "no-cors", "style"},
		{"/static/js/vendor.77aa01.js", 200, "no-cors", "script"},
		{"/static/js/app.9c1d2e.js", 200, "cors", "script"},
		{"/static/js/legacy-analytics.js", 404, "no-cors", "script"},
		{"/static/img/logo.svg", 200, "no-cors", "image"},
		{"/static/fonts/inter-var.woff2", 200, "cors", "font"},
	}
}

func pageAssets(rng *rand.Rand, page string) []asset {
	as := commonAssets()
	switch {
	case page == "/":
		as = append(as, asset{"/static/img/hero.webp", 200, "no-cors", "image"}, asset{"/static/img/banner-summer.png", 404, "no-cors", "image"})
	case len(page) > 15 && page[:15] == "/products/item/":
		id, _ := strconv.Atoi(page[15:])
		st := 200
		if id%7 == 0 {
			st = 404 // a product photo never uploaded
		}
		as = append(as, asset{fmt.Sprintf("/img/products/%d.jpg", id), st, "no-cors", "image"})
		for i := 0; i < 4; i++ {
			as = append(as, asset{fmt.Sprintf("/img/products/%d-thumb.jpg", 1+rng.IntN(60)), 200, "no-cors", "image"})
		}
	case len(page) > 6 && page[:6] == "/blog/":
		st := 200
		if len(page)%3 == 0 {
			st = 404
		}
		as = append(as, asset{"/img/blog" + page[5:] + ".jpg", st, "no-cors", "image"})
	case page == "/products" || page == "/products/shoes" || page == "/products/bags":
		for i := 0; i < 8; i++ {
			id := 1 + rng.IntN(60)
			st := 200
			if id%11 == 0 {
				st = 404
			}
			as = append(as, asset{fmt.Sprintf("/img/products/%d-thumb.jpg", id), st, "no-cors", "image"})
		}
	}
	return as
}

// visitor is one browser on the shop.
type visitor struct {
	rng      *rand.Rand
	c        *corpus
	src, ua  string
	secFetch bool // the browser sends Sec-Fetch-* (all current ones do)
	ios      bool
	cached   map[string]bool
	t        float64
	visited  bool
}

func newVisitor(rng *rand.Rand, c *corpus, src string, start float64) *visitor {
	ua := pick(rng, browsers)
	v := &visitor{rng: rng, c: c, src: src, ua: ua, secFetch: true, cached: map[string]bool{}, t: start}
	v.ios = ua == browsers[5]
	if rng.IntN(10) == 0 {
		// an old iPhone: Safari before 16.4 sends no Sec-Fetch-*
		v.ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 15_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.6.6 Mobile/15E148 Safari/604.1"
		v.ios, v.secFetch = true, false
	}
	return v
}

func (v *visitor) emit(target string, status int, site, mode, dest string) {
	if !v.secFetch {
		site, mode, dest = "", "", ""
	}
	v.c.add(req{src: v.src, t: v.t, method: "GET", target: target, status: status, site: site, mode: mode, dest: dest, ua: v.ua})
}

// open navigates to a page and loads what it needs.
func (v *visitor) open(target string, status int, site string) {
	v.emit(target, status, site, "navigate", "document")
	base := v.t
	if status == 200 {
		for _, a := range pageAssets(v.rng, target) {
			if v.cached[a.target] {
				continue
			}
			v.t = base + between(v.rng, 0.05, 0.6)
			v.emit(a.target, a.status, "same-origin", a.mode, a.dest)
			if a.status == 200 {
				v.cached[a.target] = true
			}
		}
	}
	if !v.visited {
		v.visited = true
		v.t = base + between(v.rng, 0.3, 1)
		v.emit("/favicon.ico", 404, "same-origin", "no-cors", "image")
		if v.ios {
			v.emit("/apple-touch-icon-precomposed.png", 404, "same-origin", "no-cors", "image")
			v.emit("/apple-touch-icon.png", 404, "same-origin", "no-cors", "image")
		}
	}
	v.t = base
}

// browse opens n pages, following links (a dead one now and then).
func (v *visitor) browse(n int, deadRate float64) {
	site := pick(v.rng, []string{"none", "cross-site", "cross-site"})
	for i := 0; i < n; i++ {
		target, status := pick(v.rng, sitePages), 200
		switch r := v.rng.Float64(); {
		case i == 0:
			target = pick(v.rng, []string{"/", "/", "/products", "/blog/how-we-source-leather"})
		case r < deadRate:
			target, status = pick(v.rng, deadLinks), 404
		case r < 0.45:
			target = "/products/item/" + strconv.Itoa(1+v.rng.IntN(60))
		case r < 0.55:
			target = "/search?q=" + url.QueryEscape(pick(v.rng, searches))
		}
		v.open(target, status, site)
		site = "same-origin"
		v.t += between(v.rng, 3, 45)
	}
}

func genBenign(rng *rand.Rand, c *corpus) {
	for i := 1; i <= 30; i++ {
		newVisitor(rng, c, fmt.Sprintf("benign/visitor-%02d", i), 0).browse(3+rng.IntN(12), 0.12)
	}
	// students of a security course: their searches carry payload words
	for i := 1; i <= 6; i++ {
		v := newVisitor(rng, c, fmt.Sprintf("benign/searcher-%02d", i), 0)
		v.browse(2, 0)
		for _, q := range sample(rng, securitySearches, 5+rng.IntN(6)) {
			v.open("/search?q="+url.QueryEscape(q), 200, "same-origin")
			v.t += between(rng, 4, 40)
		}
		v.browse(2, 0)
	}
	// downloads that exist: dumps, archives, schema files
	for i := 1; i <= 5; i++ {
		v := newVisitor(rng, c, fmt.Sprintf("benign/downloader-%02d", i), 0)
		v.browse(2, 0)
		for _, d := range sample(rng, downloads, 3+rng.IntN(4)) {
			v.emit(d, 200, "same-origin", "navigate", "document")
			v.t += between(rng, 2, 20)
		}
		// and one broken download link
		v.emit("/downloads/db-2019.sql.gz", 404, "same-origin", "navigate", "document")
	}
	genAPIClients(c)
	genCrossSite(rng, c)
	genOffices(rng, c)
	genOddVisitors(rng, c)
}

// genAPIClients: programs with many ordinary 404s (deleted records).
func genAPIClients(c *corpus) {
	ua := "inventory-sync/2.3 (+https://shop.example/integrations)"
	for i := 0; i < 40; i++ {
		status := 200
		if i%3 == 1 {
			status = 404 // 13 deleted items within the minute
		}
		c.add(req{src: "benign/api-client-01", t: float64(i) * 1.5, method: "GET", target: fmt.Sprintf("/api/items/%d", 1000+i), status: status, ua: ua})
	}
	app := "ShopApp/5.2 (iPhone; iOS 17.5; Scale/3.00)"
	for i := 0; i < 20; i++ {
		target, status := fmt.Sprintf("/api/v1/orders/%08x-4e2b-4c1d-9a7e-1f2a3b4c5d%02d", 0x5a17c0de+i*977, i), 404
		if i%4 == 0 {
			target, status = "/api/v1/cart", 200
		}
		c.add(req{src: "benign/api-client-02", t: float64(i) * 0.8, method: "GET", target: target, status: status, ua: app})
	}
}

// crossSiteTargets are what a third-party page embeds to get visitors
// blocked: probe paths as images, scripts, styles, frames and fetches.
var crossSiteTargets = []asset{
	{"/wp-admin/x.png", 404, "no-cors", "image"}, {"/wp-login.php", 404, "no-cors", "image"},
	{"/.env", 404, "no-cors", "image"}, {"/.git/config", 404, "no-cors", "image"}, {"/phpmyadmin/", 404, "no-cors", "image"},
	{"/admin/", 404, "no-cors", "image"}, {"/?id=1%20UNION%20SELECT%20password%20FROM%20users", 200, "no-cors", "image"},
	{"/search?q=%3Cscript%3Ealert(1)%3C/script%3E", 200, "no-cors", "script"}, {"/static/..%2f..%2fetc%2fpasswd", 404, "no-cors", "style"},
	{"/wp-content/plugins/revslider/readme.txt", 404, "no-cors", "image"}, {"/xmlrpc.php", 404, "no-cors", "image"},
	{"/_ignition/execute-solution", 404, "cors", "empty"}, {"/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", 404, "cors", "empty"},
	{"/backup.zip", 404, "no-cors", "image"}, {"/.aws/credentials", 404, "no-cors", "image"}, {"/wp-admin/install.php", 404, "navigate", "iframe"},
	{"/administrator/", 404, "no-cors", "image"}, {"/pma/", 404, "no-cors", "image"}, {"/wp-config.php.bak", 404, "no-cors", "image"},
	{"/.htpasswd", 403, "no-cors", "image"}, {"/db.sql", 404, "no-cors", "image"}, {"/?q=${jndi:ldap://x/a}", 200, "no-cors", "image"},
	{"/index.php?page=../../../../etc/passwd", 200, "no-cors", "image"}, {"/hnap1/", 404, "no-cors", "image"}, {"/wp-signup.php", 404, "no-cors", "image"},
}

// genCrossSite: visitors of a page that embeds our probe paths; half of
// them then browse the shop itself, which must still work for them.
func genCrossSite(rng *rand.Rand, c *corpus) {
	for i := 1; i <= 40; i++ {
		v := newVisitor(rng, c, fmt.Sprintf("benign/cross-site-embed-%02d", i), 0)
		v.secFetch = true // only browsers that send Sec-Fetch-* can be told apart
		if v.ua == browsers[5] || v.ios {
			v.ua = browsers[0]
		}
		for round := 0; round < 1+rng.IntN(3); round++ {
			base := v.t
			for _, a := range crossSiteTargets {
				v.t = base + between(rng, 0.05, 1.5)
				v.emit(a.target, a.status, "cross-site", a.mode, a.dest)
			}
			v.t = base + between(rng, 20, 120)
		}
		if i%2 == 0 {
			v.browse(3+rng.IntN(5), 0.1)
		}
	}
}

// genOffices: many people behind one NAT address, each browsing.
func genOffices(rng *rand.Rand, c *corpus) {
	for o, users := range []int{25, 60} {
		var office corpus
		src := fmt.Sprintf("benign/office-nat-%d", o+1)
		span := 1800.0 * float64(o+1)
		for u := 0; u < users; u++ {
			v := newVisitor(rng, &office, src, between(rng, 0, span))
			v.browse(2+rng.IntN(10), 0.1)
			if u%10 == 3 {
				v.open("/search?q="+url.QueryEscape(pick(rng, securitySearches)), 200, "same-origin")
			}
			if u%15 == 7 {
				v.emit(pick(rng, downloads), 200, "same-origin", "navigate", "document")
			}
		}
		sort.SliceStable(office.reqs, func(i, j int) bool { return office.reqs[i].t < office.reqs[j].t })
		c.reqs = append(c.reqs, office.reqs...)
	}
}

// genOddVisitors: a crawler on stale URLs, a broken single-page app, old
// bookmarks, curious visitors, a link to an XSS demo.
func genOddVisitors(rng *rand.Rand, c *corpus) {
	bot := "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	t := 0.0
	c.add(req{src: "benign/crawler-01", t: t, method: "GET", target: "/robots.txt", status: 404, ua: bot})
	c.add(req{src: "benign/crawler-01", t: t + 1, method: "GET", target: "/sitemap.xml", status: 404, ua: bot})
	for i := 0; i < 150; i++ {
		t += between(rng, 3, 10)
		target, status := pick(rng, sitePages), 200
		if rng.IntN(5) == 0 {
			target, status = fmt.Sprintf("/blog/old-post-%d", i), 404
		}
		c.add(req{src: "benign/crawler-01", t: t, method: "GET", target: target, status: status, ua: bot})
	}

	spa := newVisitor(rng, c, "benign/broken-spa-01", 0)
	spa.open("/app", 200, "none")
	for i := 0; i < 10; i++ {
		ext, dest := ".js", "script"
		if i%3 == 0 {
			ext, dest = ".css", "style"
		}
		spa.t += 0.05
		spa.emit(fmt.Sprintf("/assets/chunk-%x%s", 0xa1b2c3+i*4099, ext), 404, "same-origin", "no-cors", dest)
	}
	for i := 0; i < 18; i++ {
		spa.t += 10
		spa.emit("/api/notifications", 404, "same-origin", "cors", "empty")
		spa.emit("/api/me", 404, "same-origin", "cors", "empty")
	}

	old := newVisitor(rng, c, "benign/bookmarks-01", 0)
	for _, p := range sample(rng, deadLinks, 6) {
		old.open(p, 404, "none")
		old.t += between(rng, 2, 10)
	}

	for i, seq := range [][]asset{
		{{"/admin", 404, "navigate", "document"}, {"/wp-admin/", 404, "navigate", "document"}, {"/login", 200, "navigate", "document"}},
		{{"/.well-known/security.txt", 404, "navigate", "document"}, {"/robots.txt", 404, "navigate", "document"}, {"/humans.txt", 404, "navigate", "document"}, {"/sitemap.xml", 404, "navigate", "document"}},
	} {
		v := newVisitor(rng, c, fmt.Sprintf("benign/curious-%02d", i+1), 0)
		v.browse(2, 0)
		for _, a := range seq {
			v.emit(a.target, a.status, "none", a.mode, a.dest)
			v.t += between(rng, 3, 15)
		}
	}

	x := newVisitor(rng, c, "benign/xss-demo-link-01", 0)
	x.open("/search?q="+url.QueryEscape("<script>alert(1)</script>"), 200, "cross-site")
	x.t += 30
	x.browse(3, 0)
}
