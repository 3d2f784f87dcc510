package main

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
)

// csScenario is a CrowdSec HTTP scenario as facts: which requests it counts
// (match), what makes them distinct, its capacity and leak speed (seconds).
// The lists in match are the kind of data the public scenarios use, reduced
// to what the emulated sources send.
type csScenario struct {
	capacity int
	leak     float64
	match    func(r req) bool
	distinct func(r req) string
}

// bans runs CrowdSec's leaky bucket over a source's requests: a queue that
// holds capacity events and leaks its oldest one every leak seconds; an
// event whose distinct value is in the queue is dropped; an event poured
// into a full queue overflows (the ban).
func (s csScenario) bans(rs []req) bool {
	var queue []string
	var lastLeak float64
	for _, r := range rs {
		if !s.match(r) {
			continue
		}
		if len(queue) == 0 {
			lastLeak = r.t
		}
		for len(queue) > 0 && r.t-lastLeak >= s.leak {
			queue, lastLeak = queue[1:], lastLeak+s.leak
		}
		key := ""
		if s.distinct != nil {
			key = s.distinct(r)
			if contains(queue, key) {
				continue
			}
		}
		if len(queue) >= s.capacity {
			return true
		}
		queue = append(queue, key)
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func status4xx(r req, codes ...int) bool {
	for _, c := range codes {
		if r.status == c {
			return true
		}
	}
	return false
}

func pathOf(r req) string {
	if i := strings.IndexByte(r.target, '?'); i >= 0 {
		return r.target[:i]
	}
	return r.target
}

func argsOf(r req) string {
	if i := strings.IndexByte(r.target, '?'); i >= 0 {
		q, err := url.QueryUnescape(r.target[i+1:])
		if err != nil {
			return strings.ToLower(r.target[i+1:])
		}
		return strings.ToLower(q)
	}
	return ""
}

func anyIn(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func anySuffix(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.HasSuffix(s, sub) {
			return true
		}
	}
	return false
}

// Facts of the scenarios' data files, as the emulation needs them.
var (
	csAdmin     = []string{"/phpmyadmin", "/pma", "/admin", "/wp-admin", "/manager", "/wp-login"}
	csCVE       = []string{"/global-protect/login.esp", "/cgi-bin/nas_sharing.cgi", "/_ignition/execute-solution", "/setup.cgi", "/hnap1/", "/hedwig.cgi", "/webinterface/", "/guestaccess.aspx", "/mdm/checkin", "/developmentserver/metadatauploader", "/_layouts/15/toolpane.aspx", "/gsb/datetime.php", "/clients/mycrl", "/cgi/networkdiag.cgi", "/server/node_upgrade_srv.js", "/nf/auth/startwebview.do"}
	csSensitive = []string{".sql", ".sql.gz", ".sql.zip", ".bash_history", ".bashrc", ".env", ".git/head", ".git", ".htaccess", ".htpasswd", ".mysql_history", ".profile", ".ssh", ".svn", ".svn/entries", ".bak", ".aws", "aws/credentials", "composer.json", "composer.lock", "debug.log"}
	csTraversal = []string{"../", "..\\", "%2e%2e%2f", "%252e%252e%252f", "/etc/passwd", "/etc/hosts", "/etc/shadow", "%2fetc%2fpasswd", "=file://", "=php://", "/proc/self/", "/var/log/", "windows/win.ini", "c:/boot.ini"}
	csSQLi      = []string{"@@version", "xp_cmdshell", "information_schema.tables", " union all select ", " union select ", ",null,null", "benchmark(", "load_file(", "substr(", "substring(", "||chr(", "pg_sleep(", "sleep(", "upper(", "hex("}
	csXSS       = []string{"<img", "<svg", "<script", "<div", "<a", "<embed", "<style", "javascript:", "alert(", "prompt(", "<input", "<object", "<body", "<meta", "<iframe"}
	csBadAgents = []string{"nmap", "masscan", "zgrab", "nuclei", "wpscan", "nikto", "sqlmap", "censysinspect", "netcraft", "gobuster", "feroxbuster", "fuzz faster u fool"}
	csStatic    = []string{".css", ".js", ".png", ".jpg", ".gif", ".ico", ".svg", ".woff", ".woff2"}
)

var csScenarios = map[string]csScenario{
	"cve": {1, 10, func(r req) bool {
		return status4xx(r, 404, 403) && anyIn(strings.ToLower(pathOf(r)), csCVE)
	}, pathOf},
	"admin": {4, 10, func(r req) bool {
		return status4xx(r, 404, 403) && anyIn(strings.ToLower(pathOf(r)), csAdmin)
	}, pathOf},
	"wordpress": {3, 10, func(r req) bool {
		p := strings.ToLower(pathOf(r))
		return status4xx(r, 404, 403) && strings.Contains(p, "/wp-") && strings.HasSuffix(p, ".php")
	}, pathOf},
	"traversal": {3, 10, func(r req) bool { return anyIn(strings.ToLower(r.target), csTraversal) }, func(r req) string { return r.target }},
	"sensitive": {2, 5, func(r req) bool { return anySuffix(strings.ToLower(pathOf(r)), csSensitive) }, func(r req) string { return r.target }},
	"probing": {10, 10, func(r req) bool {
		return status4xx(r, 404, 403, 400) && !anySuffix(strings.ToLower(pathOf(r)), csStatic)
	}, pathOf},
	"badagent": {1, 60, func(r req) bool { return anyIn(strings.ToLower(r.ua), csBadAgents) }, nil},
	"sqli":     {10, 1, func(r req) bool { return anyIn(argsOf(r), csSQLi) }, argsOf},
	"xss":      {5, 1, func(r req) bool { return anyIn(argsOf(r), csXSS) }, argsOf},
}

// scannerAgents are what bots send instead of a browser's User-Agent.
var botAgents = []string{
	"Go-http-client/1.1", "python-requests/2.31.0", "curl/7.88.1", "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36",
	"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/56.0.2924.87 Safari/537.36",
	"python-httpx/0.27.0", "Mozilla/5.0",
}

// families describe how each emulated source family behaves: the pool of
// targets, how many distinct ones a source sends, the gap between requests
// and the statuses the site answers.
type family struct {
	targets  []string
	n        [2]int     // distinct targets per source
	gap      [2]float64 // seconds between requests
	statuses []int
	agents   []string
}

var families = map[string]family{
	"cve": {[]string{
		"/_ignition/execute-solution", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/global-protect/login.esp",
		"/cgi-bin/nas_sharing.cgi", "/HNAP1/", "/boaform/admin/formLogin", "/GponForm/diag_Form?images/", "/setup.cgi?next_file=netgear.cfg",
		"/hedwig.cgi", "/actuator/gateway/routes", "/solr/admin/info/system?wt=json", "/wls-wsat/CoordinatorPortType",
		"/autodiscover/autodiscover.json?@zdi/Powershell", "/mgmt/tm/util/bash", "/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession",
		"/dana-na/../dana/html5acc/guacamole/../../../../../../etc/passwd?/dana/html5acc/guacamole/", "/api/jsonws/invoke",
		"/index.php?s=/Index/%5Cthink%5Capp/invokefunction&function=call_user_func_array&vars[0]=md5&vars[1][]=HelloThinkPHP",
		"/webtools/control/main", "/developmentserver/metadatauploader", "/_layouts/15/ToolPane.aspx?DisplayMode=Edit",
		"/goanywhere/lic/accept", "/mdm/checkin", "/guestaccess.aspx", "/webinterface/login.html", "/clients/MyCRL",
		"/cgi/networkDiag.cgi", "/server/node_upgrade_srv.js", "/nf/auth/startwebview.do", "/gsb/datetime.php",
		"/containers/json", "/shell.php", "/wso.php", "/alfa.php", "/c99.php",
	}, [2]int{2, 5}, [2]float64{0.3, 6}, []int{404}, botAgents},
	"admin": {[]string{
		"/admin", "/admin/", "/administrator/", "/admin/login.php", "/admin.php", "/phpmyadmin/", "/phpMyAdmin/",
		"/pma/", "/myadmin/", "/mysqladmin/", "/wp-login.php", "/wp-admin/", "/manager/html", "/admin/index.html",
		"/sqladmin/", "/dbadmin/", "/phpmyadmin2/", "/pma2020/", "/admin/config.php", "/cpanel", "/webadmin/", "/admin1/",
		"/adminpanel/", "/phpMyAdmin-5.2.1/", "/admin/login", "/manager/status",
	}, [2]int{5, 11}, [2]float64{0.2, 4}, []int{404, 404, 403}, botAgents},
	"wordpress": {[]string{
		"/wp-login.php", "/wp-admin/install.php", "/wp-admin/setup-config.php", "/wp-admin/upgrade.php", "/wp-cron.php",
		"/wp-content/plugins/wp-file-manager/lib/php/connector.minimal.php", "/wp-content/themes/twentytwenty/404.php",
		"/wp-content/plugins/revslider/temp/update_extract/revslider/info.php", "/wp-admin/includes/themes.php",
		"/wp-content/uploads/wp-file.php", "/blog/wp-login.php", "/wordpress/wp-login.php", "/wp/wp-login.php",
		"/wp-signup.php", "/wp-trackback.php", "/wp-links-opml.php", "/wp-mail.php", "/xmlrpc.php", "/wp-includes/wlwmanifest.xml",
		"/wp-json/wp/v2/users", "/wp-content/plugins/contact-form-7/readme.txt",
	}, [2]int{4, 10}, [2]float64{0.2, 4}, []int{404}, botAgents},
	"traversal": {[]string{
		"/../../../../etc/passwd", "/static/..%2f..%2f..%2f..%2fetc%2fpasswd", "/?file=../../../../etc/passwd",
		"/index.php?page=../../../../../../etc/passwd", "/download.php?file=..%2F..%2F..%2Fetc%2Fpasswd",
		"/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd", "/assets../etc/passwd", "/static../../etc/hosts",
		"/images/..%252f..%252f..%252fetc/passwd", "/?page=....//....//....//etc/passwd", "/?path=C:/Windows/win.ini",
		"/..%5c..%5c..%5cwindows%5cwin.ini", "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/shadow", "/public/../../../proc/self/environ",
		"/?f=/etc/passwd", "/?template=../../../../../var/log/nginx/access.log", "/?page=php://filter/convert.base64-encode/resource=index",
		"/?file=file:///etc/passwd", "/js../", "/img../etc/passwd",
	}, [2]int{4, 8}, [2]float64{0.1, 3}, []int{404, 400}, botAgents},
	"sensitive": {[]string{
		"/.env", "/.git/HEAD", "/.git/config", "/.htaccess", "/.htpasswd", "/backup.sql", "/db.sql", "/dump.sql.gz",
		"/.bash_history", "/.ssh", "/.aws/credentials", "/aws/credentials", "/composer.json", "/composer.lock", "/debug.log",
		"/.DS_Store", "/config.php.bak", "/.svn/entries", "/www.sql.zip", "/.mysql_history", "/.profile", "/.bashrc",
		"/api/.env", "/app/.env.production", "/database.sql", "/wp-config.php.bak",
	}, [2]int{3, 10}, [2]float64{0.1, 3}, []int{404, 404, 403}, botAgents},
	"probing": {[]string{
		"/backup", "/old", "/test", "/dev", "/staging", "/api/v2", "/console", "/portal", "/private", "/tmp", "/temp",
		"/config", "/setup", "/install", "/uploads/files", "/data", "/db", "/logs", "/secret", "/internal", "/beta",
		"/demo", "/v1", "/cms", "/panel", "/dashboard2", "/system", "/include", "/lib", "/scripts", "/cgi-bin/test",
		"/user/login", "/member", "/download", "/files", "/export", "/import", "/server", "/status", "/info", "/debug",
		"/monitor", "/jenkins", "/grafana", "/kibana", "/solr", "/actuator", "/actuator/health", "/swagger-ui.html",
		"/api-docs", "/graphql", "/console/login", "/owa", "/remote", "/vpn", "/webmail", "/mail", "/roundcube",
		"/config.json", "/settings.json", "/index.old", "/site", "/new", "/shop", "/store", "/crm", "/erp", "/hr",
	}, [2]int{11, 40}, [2]float64{0.02, 0.8}, []int{404, 404, 404, 403}, botAgents},
	"badagent": {[]string{
		"/", "/robots.txt", "/.env", "/favicon.ico", "/sitemap.xml", "/login", "/index.php", "/api", "/.git/config", "/admin",
	}, [2]int{2, 6}, [2]float64{0.5, 20}, []int{200, 404, 404}, []string{
		"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
		"masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "Mozilla/5.0 zgrab/0.x",
		"Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
		"WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
		"Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:Port Check)", "sqlmap/1.8#stable (https://sqlmap.org)",
		"Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)", "gobuster/3.6", "feroxbuster/2.10.4",
		"Fuzz Faster U Fool v2.1.0-dev", "Mozilla/5.0 (compatible; Netcraft Web Server Survey)",
	}},
}

// sqliPayloads and xssPayloads are the values probing sources put in a
// query parameter.
var sqliPayloads = []string{
	"1' OR '1'='1", "1 UNION SELECT NULL,NULL--", "1 AND SLEEP(5)", "1' AND (SELECT 1 FROM (SELECT(SLEEP(5)))a)--",
	"1;WAITFOR DELAY '0:0:5'--", "1 AND 1=CONVERT(int,@@version)--", "-1 UNION ALL SELECT table_name FROM information_schema.tables--",
	"1' AND extractvalue(1,concat(0x7e,version()))--", "1 OR pg_sleep(5)--", "1' AND updatexml(1,concat(0x7e,user()),1)--",
	"1 AND benchmark(5000000,md5(1))", "1' UNION SELECT load_file('/etc/passwd')--", "1 AND substring(version(),1,1)=5",
	"1 AND ASCII(SUBSTR((SELECT user()),1,1))>64", "1)) OR 1=1--", "1 OR 1=1#", "1' UNION SELECT NULL,NULL,NULL--",
	"1 AND hex(user())", "-1' UNION SELECT 1,@@version,3--", "1' AND upper(user())='ROOT'--", "1 || chr(65)||chr(66)",
	"1' OR SLEEP(3)='", "x' AND 1=(SELECT COUNT(*) FROM information_schema.tables)--",
}

var xssPayloads = []string{
	"<script>alert(1)</script>", "\"><svg/onload=alert(1)>", "<img src=x onerror=alert(1)>", "javascript:alert(document.cookie)",
	"<body onload=alert(1)>", "'><iframe src=javascript:alert(1)>", "<details open ontoggle=alert(1)>",
	"<a href=javascript:prompt(1)>x</a>", "<input autofocus onfocus=alert(1)>", "<object data=javascript:alert(1)>",
	"<embed src=javascript:alert(1)>", "<style>@import'javascript:alert(1)'</style>", "<meta http-equiv=refresh content=0;url=javascript:alert(1)>",
	"\"><script>prompt(document.domain)</script>", "<svg><script>alert(1)</script>", "<img src=1 onerror=prompt(1)>",
	"<div onmouseover=alert(1)>x</div>", "'-alert(1)-'", "<ScRiPt>confirm(1)</ScRiPt>",
}

// genCrowdSec makes perFamily sources of each family that the family's
// scenario would ban.
func genCrowdSec(rng *rand.Rand, c *corpus) {
	const perFamily = 12
	names := []string{"cve", "admin", "wordpress", "traversal", "sensitive", "probing", "badagent", "sqli", "xss"}
	for _, name := range names {
		sc := csScenarios[name]
		kept := 0
		for attempt := 0; kept < perFamily && attempt < 1000; attempt++ {
			src := fmt.Sprintf("crowdsec/%s-%02d", name, kept+1)
			rs := emulate(rng, name, src)
			if !sc.bans(rs) {
				continue
			}
			for _, r := range rs {
				c.add(r)
			}
			kept++
		}
		if kept < perFamily {
			panic("too few sources the scenario bans for " + name)
		}
	}
}

// emulate makes one source of a family: sometimes a look at the home page
// first, then its probes at the family's pace.
func emulate(rng *rand.Rand, name, src string) []req {
	var rs []req
	t := 0.0
	ua := pick(rng, botAgents)
	if rng.IntN(3) == 0 {
		rs = append(rs, req{src: src, t: t, method: "GET", target: "/", status: 200, ua: ua})
		t += between(rng, 0.2, 2)
	}
	switch name {
	case "sqli", "xss":
		payloads, page := sqliPayloads, pick(rng, []string{"/item?id=", "/search?q=", "/products?category=", "/index.php?id="})
		n := [2]int{15, len(sqliPayloads)}
		if name == "xss" {
			payloads, n = xssPayloads, [2]int{8, len(xssPayloads)}
		}
		for _, p := range sample(rng, payloads, n[0]+rng.IntN(n[1]-n[0]+1)) {
			rs = append(rs, req{src: src, t: t, method: "GET", target: page + url.QueryEscape(p), status: pick(rng, []int{200, 500, 404}), ua: ua})
			t += between(rng, 0.02, 0.3) // a tool's pace: CrowdSec's buckets leak every second
		}
		return rs
	}
	f := families[name]
	if name == "badagent" {
		ua = pick(rng, f.agents)
	}
	for _, target := range sample(rng, f.targets, f.n[0]+rng.IntN(f.n[1]-f.n[0]+1)) {
		status := pick(rng, f.statuses)
		if target == "/" {
			status = 200
		}
		rs = append(rs, req{src: src, t: t, method: "GET", target: target, status: status, ua: ua})
		t += between(rng, f.gap[0], f.gap[1])
	}
	return rs
}
