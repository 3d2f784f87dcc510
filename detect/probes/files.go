package probes

import (
	"bytes"
	"strings"
	"sync"
)

// The probe checks below look at one request's path, query and User-Agent
// and say whether it can only be an attacker's probe. They run on every
// request, so they are pure string work without allocations; each returns
// a short, fixed evidence name (never the attacker's own bytes, which the
// caller may record separately, shortened and escaped).
//
// They are deliberately a small, well-tested set, not a WAF: each entry is
// something no browser of a legitimate user sends.

// maxSegment bounds the path segments the sensitive-file check lowercases;
// longer ones are no file name of the list.
const maxSegment = 64

// dotNames are hidden files and folders of a server's checkout or home
// directory. ".well-known" is the only dot segment sites publish.
var dotNames = map[string]string{
	".git": "git", ".svn": "svn", ".hg": "hg", ".bzr": "bzr", ".cvs": "cvs",
	".ds_store": "ds_store", ".htaccess": "htaccess", ".htpasswd": "htpasswd",
	".aws": "aws", ".ssh": "ssh", ".npmrc": "npmrc", ".pypirc": "pypirc",
	".netrc": "netrc", ".docker": "docker", ".dockercfg": "docker",
	".bash_history": "shell_history", ".zsh_history": "shell_history",
	".mysql_history": "shell_history", ".vscode": "vscode", ".idea": "idea",
	".git-credentials": "git", ".gitconfig": "git", ".kube": "kube",
	".terraform": "terraform",
}

// fileNames are well-known configuration files and archive names.
var fileNames = map[string]string{
	"wp-config.php": "wp-config", "web.config": "web.config", "phpinfo.php": "phpinfo",
	"server-status": "server-status", "terraform.tfstate": "tfstate",
	"id_rsa": "ssh_key", "id_dsa": "ssh_key", "id_ecdsa": "ssh_key", "id_ed25519": "ssh_key",
	"backup.zip": "backup", "backup.tar": "backup", "backup.tar.gz": "backup", "backup.tgz": "backup",
	"backup.rar": "backup", "backup.7z": "backup", "www.zip": "backup", "site.zip": "backup",
	"web.zip": "backup", "htdocs.zip": "backup", "wwwroot.zip": "backup", "db.zip": "backup",
	"database.zip": "backup", "dump.zip": "backup",
	"dump.sql": "backup", "backup.sql": "backup", "db.sql": "backup", "database.sql": "backup",
	"data.sql": "backup", "mysql.sql": "backup", "site.sql": "backup", "www.sql": "backup",
}

// backupSuffixes end editor leftovers and compressed database dumps. Endings
// that real sites also serve (.sql schemas, .sqlite downloads, .old or .save
// pages) are left to the scan detector, which needs the 4xx answers of many
// of them before it blocks anyone.
var backupSuffixes = []string{".bak", ".swp", ".sql.gz", ".sql.zip", ".tfstate", "~"}

// SensitiveFile reports whether path asks for a file that no public site
// serves (version-control folders, .env files, credentials, backups) and
// names it. Matching is per path segment and case-insensitive, so
// "/repo.git/info/refs" or "/environment" do not match.
func SensitiveFile(path string) (string, bool) {
	for len(path) > 0 {
		seg := path
		if i := strings.IndexByte(path, '/'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if seg == "" || len(seg) > maxSegment || !fileLike(seg) {
			continue
		}
		var buf [maxSegment]byte
		low := lowerInto(buf[:], seg)
		if ev, ok := sensitiveSegment(low); ok {
			return ev, true
		}
	}
	return "", false
}

// fileLike is a cheap gate: only segments with a dot, a trailing "~" or the
// few dotless names of the lists are worth lowercasing.
func fileLike(s string) bool {
	if strings.IndexByte(s, '.') >= 0 || s[len(s)-1] == '~' {
		return true
	}
	return (len(s) > 3 && (s[0]|0x20) == 'i' && (s[1]|0x20) == 'd' && s[2] == '_') || strings.EqualFold(s, "server-status")
}

func sensitiveSegment(low []byte) (string, bool) {
	if low[0] == '.' {
		if string(low) == ".well-known" {
			return "", false
		}
		if ev, ok := dotNames[string(low)]; ok {
			return ev, true
		}
		if string(low) == ".env" || hasPrefixBytes(low, ".env.") {
			return "env", true
		}
		return "", false
	}
	if ev, ok := fileNames[string(low)]; ok {
		return ev, true
	}
	for _, suf := range backupSuffixes {
		if hasSuffixBytes(low, suf) && len(low) > len(suf) {
			return "backup", true
		}
	}
	return "", false
}

// staticExts are the assets whose 404s say nothing about a scan: a page that
// links a missing image must not get its visitors blocked.
var staticExts = map[string]bool{
	"css": true, "js": true, "mjs": true, "map": true, "png": true, "jpg": true, "jpeg": true,
	"gif": true, "webp": true, "avif": true, "svg": true, "ico": true, "bmp": true,
	"woff": true, "woff2": true, "ttf": true, "otf": true, "eot": true,
	"mp4": true, "webm": true, "mp3": true, "ogg": true, "wav": true, "webmanifest": true,
}

// staticNames are files browsers and crawlers ask for on their own.
var staticNames = map[string]bool{
	"robots.txt": true, "sitemap.xml": true, "humans.txt": true, "ads.txt": true,
	"security.txt": true, "browserconfig.xml": true, "manifest.json": true, "crossdomain.xml": true,
}

// StaticAsset reports whether a 4xx for path is ordinary noise (a missing
// image, font or stylesheet, a crawler's robots.txt, a browser's
// /.well-known/ or apple-touch-icon request) rather than a sign of probing.
func StaticAsset(path string) bool {
	if len(path) > 12 && strings.EqualFold(path[:13], "/.well-known/") {
		return true
	}
	name := path[strings.LastIndexByte(path, '/')+1:]
	if len(name) == 0 || len(name) > maxSegment {
		return false
	}
	var buf [maxSegment]byte
	low := lowerInto(buf[:], name)
	if staticNames[string(low)] || hasPrefixBytes(low, "apple-touch-icon") {
		return true
	}
	if i := lastIndexByte(low, '.'); i >= 0 {
		return staticExts[string(low[i+1:])]
	}
	return false
}

// scannerAgents are substrings of the User-Agent of security scanners and
// attack tools (lower case); browsers and ordinary HTTP libraries never
// send them.
var scannerAgents = []string{
	"sqlmap", "nikto", "nuclei", "gobuster", "dirbuster", "wfuzz", "fuzz faster u fool",
	"feroxbuster", "masscan", "zgrab", "nmap scripting engine", "acunetix", "nessus",
	"openvas", "wpscan", "joomscan", "arachni", "w3af", "havij", "commix", "skipfish",
	"netsparker", "jaeles", "xsstrike", "whatweb", "zmeu", "morfeus", "sqlninja",
	"fimap", "dotdotpwn", "webinspect", "wapiti", "interactsh", "(hydra)",
}

// scannerAgentSets holds the bytes of each scanner name, so that names whose
// letters do not all occur in a User-Agent are skipped without a search.
var scannerAgentSets, scannerAgentBytes = func() ([]byteSet, [][]byte) {
	sets, bs := make([]byteSet, len(scannerAgents)), make([][]byte, len(scannerAgents))
	for i, s := range scannerAgents {
		sets[i], bs[i] = byteSetOf(s), []byte(s)
	}
	return sets, bs
}()

// maxAgent bounds how much of a User-Agent is examined.
const maxAgent = 512

// ScannerAgent reports whether ua names a known scanner, and which.
func ScannerAgent(ua string) (string, bool) {
	if len(ua) < 4 {
		return "", false
	}
	var buf [maxAgent]byte
	low := lowerInto(buf[:], ua)
	present := byteSetOfBytes(low)
	for i, s := range scannerAgents {
		if present.hasAll(&scannerAgentSets[i]) && containsBytes(low, scannerAgentBytes[i]) {
			return strings.Trim(s, "()"), true
		}
	}
	return "", false
}

// AgentVerdicts remembers ScannerAgent's answer for the User-Agents seen
// lately: a site sees few distinct ones, and a lookup costs a fraction of a
// check. It holds at most maxAgentVerdicts entries and starts afresh when
// full, so a flood of random agents costs only the checks themselves.
type AgentVerdicts struct {
	mu sync.RWMutex
	m  map[string]string // agent -> scanner name, "" for none
}

const maxAgentVerdicts = 4096

// Check is ScannerAgent through the cache.
func (c *AgentVerdicts) Check(ua string) (string, bool) {
	if len(ua) < 4 {
		return "", false
	}
	c.mu.RLock()
	name, ok := c.m[ua]
	c.mu.RUnlock()
	if ok {
		return name, name != ""
	}
	name, _ = ScannerAgent(ua)
	if len(ua) <= maxAgent {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxAgentVerdicts {
			c.m = make(map[string]string, 64)
		}
		c.m[ua] = name
		c.mu.Unlock()
	}
	return name, name != ""
}

// byteSet is a set of byte values: a 256-bit map.
type byteSet [4]uint64

func byteSetOf(s string) byteSet {
	var b byteSet
	for i := 0; i < len(s); i++ {
		b[s[i]>>6] |= 1 << (s[i] & 63)
	}
	return b
}

func byteSetOfBytes(s []byte) byteSet {
	var b byteSet
	for _, c := range s {
		b[c>>6] |= 1 << (c & 63)
	}
	return b
}

// hasAll reports whether every byte of o is in b.
func (b *byteSet) hasAll(o *byteSet) bool {
	return o[0]&^b[0]|o[1]&^b[1]|o[2]&^b[2]|o[3]&^b[3] == 0
}

// lowerInto copies s lower-cased (ASCII) into buf, truncated to its length.
func lowerInto(buf []byte, s string) []byte {
	n := copy(buf, s)
	b := buf[:n]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

func hasPrefixBytes(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

func hasSuffixBytes(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[len(b)-len(s):]) == s
}

func lastIndexByte(b []byte, c byte) int { return bytes.LastIndexByte(b, c) }

func containsBytes(b []byte, sub []byte) bool { return bytes.Contains(b, sub) }
