package risk

import "bytes"

// scriptPrefixes are the product tokens HTTP libraries and command-line
// clients start their User-Agent with (lower case), and the name the
// model keeps for each. A person at a browser never sends them, so the
// device class is "script" whatever else the header says.
var scriptPrefixes = []struct{ prefix, name string }{
	{"curl/", "curl"},
	{"wget/", "wget"},
	{"python-requests/", "python-requests"},
	{"python-urllib/", "python-urllib"},
	{"python-httpx/", "python-httpx"},
	{"python/", "python"}, // aiohttp: "Python/3.12 aiohttp/3.9"
	{"go-http-client/", "go-http-client"},
	{"okhttp/", "okhttp"},
	{"java/", "java"},
	{"apache-httpclient/", "apache-httpclient"},
	{"jakarta commons-httpclient/", "apache-httpclient"},
	{"libwww-perl/", "libwww-perl"},
	{"lwp::", "libwww-perl"},
	{"axios/", "axios"},
	{"node-fetch", "node-fetch"},
	{"undici", "undici"},
	{"node", "node"},
	{"got ", "got"},
	{"ruby", "ruby"},
	{"faraday", "faraday"},
	{"guzzlehttp/", "guzzle"},
	{"php/", "php"},
	{"scrapy/", "scrapy"},
	{"postmanruntime/", "postman"},
	{"insomnia/", "insomnia"},
	{"httpie/", "httpie"},
	{"rest-client/", "rest-client"},
	{"reqwest/", "reqwest"},
	{"dart:io", "dart"},
	{"winhttp", "winhttp"},
	{"powershell/", "powershell"},
	{"httpclient", "httpclient"},
}

// scriptNeedles are attack tools and scripted shells that hide inside a
// browser-like header ("Mozilla/5.0 (Hydra)", "… WindowsPowerShell/5.1"),
// so they are looked for anywhere in it (lower case).
var scriptNeedles = []struct{ needle, name string }{
	{"hydra", "hydra"},
	{"sqlmap", "sqlmap"},
	{"nikto", "nikto"},
	{"nuclei", "nuclei"},
	{"medusa", "medusa"},
	{"ncrack", "ncrack"},
	{"patator", "patator"},
	{"zgrab", "zgrab"},
	{"masscan", "masscan"},
	{"wpscan", "wpscan"},
	{"gobuster", "gobuster"},
	{"fuzz faster u fool", "ffuf"},
	{"powershell", "powershell"},
	{"python-requests", "python-requests"},
	{"aiohttp", "aiohttp"},
	{"go-http-client", "go-http-client"},
	{"curl/", "curl"},
}

var scriptNeedleBytes = func() [][]byte {
	b := make([][]byte, len(scriptNeedles))
	for i, n := range scriptNeedles {
		b[i] = []byte(n.needle)
	}
	return b
}()

// scriptName reports whether ua (at most MaxAgentBytes) is a scripted
// client's, and which. It lower-cases into a stack buffer: no allocation.
func scriptName(ua string) (string, bool) {
	var buf [MaxAgentBytes]byte
	low := buf[:len(ua)]
	for i := 0; i < len(ua); i++ {
		c := ua[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	for _, p := range scriptPrefixes {
		if bytes.HasPrefix(low, []byte(p.prefix)) {
			return p.name, true
		}
	}
	for i, n := range scriptNeedleBytes {
		if bytes.Contains(low, n) {
			return scriptNeedles[i].name, true
		}
	}
	return "", false
}
