package probes

import (
	"bytes"
	"strings"
)

// The probe checks below look at one request's path, query and User-Agent
// and say whether it can only be an attacker's probe. They run on every
// request, so they are pure string work without allocations; each returns
// a short, fixed evidence name (never the attacker's own bytes, which the
// caller may record separately, shortened and escaped).
//
// They are deliberately a small, well-tested set, not a WAF. A hit is
// evidence, not a verdict: the detector pours it into the address's bucket
// for its kind, and only a bucket that overflows bans (see buckets.go), so
// one search for "union select" or one odd download never does.

// maxSegment bounds the path segments the sensitive-file check lowercases;
// longer ones are no file name of the list.
const maxSegment = 64

// dotNames are hidden files and folders of a server's checkout or home
// directory. ".well-known" is the only dot segment sites publish.
var dotNames = map[string]string{
	".git": "git", ".svn": "svn", ".hg": "hg", ".bzr": "bzr", ".cvs": "cvs",
	".gitignore": "git", ".hgignore": "hg", ".cvsignore": "cvs", ".subversion": "svn",
	".ds_store": "ds_store", ".htaccess": "htaccess", ".htpasswd": "htpasswd",
	".aws": "aws", ".ssh": "ssh", ".npmrc": "npmrc", ".pypirc": "pypirc",
	".netrc": "netrc", ".docker": "docker", ".dockercfg": "docker",
	".bash_history": "shell_history", ".zsh_history": "shell_history", ".sh_history": "shell_history",
	".history": "shell_history", ".mysql_history": "shell_history", ".psql_history": "shell_history",
	".bashrc": "shell_profile", ".bash_profile": "shell_profile", ".profile": "shell_profile", ".zshrc": "shell_profile",
	".rhosts": "rhosts", ".passwd": "passwd", ".pwd": "passwd", ".forward": "forward", ".listing": "listing",
	".vscode": "vscode", ".idea": "idea",
	".git-credentials": "git", ".gitconfig": "git", ".kube": "kube",
	".terraform": "terraform",
}

// fileNames are well-known configuration and credential files: no site
// serves them to its visitors, so even a request the site answers counts.
var fileNames = map[string]string{
	"web.config": "web.config", "phpinfo.php": "phpinfo",
	"server-status": "server-status", "terraform.tfstate": "tfstate",
	"id_rsa": "ssh_key", "id_dsa": "ssh_key", "id_ecdsa": "ssh_key", "id_ed25519": "ssh_key",
}

// archiveNames are backup archives, dumps and build files that a scanner
// tries by name. Real sites also publish files with such names (a
// "www.zip" download, a "debug.log" sample), so they count only when the
// site answers 4xx: the file is not there and the request was a guess.
var archiveNames = map[string]string{
	"backup.zip": "backup", "backup.tar": "backup", "backup.tar.gz": "backup", "backup.tgz": "backup",
	"backup.rar": "backup", "backup.7z": "backup", "www.zip": "backup", "site.zip": "backup",
	"web.zip": "backup", "htdocs.zip": "backup", "wwwroot.zip": "backup", "db.zip": "backup",
	"database.zip": "backup", "dump.zip": "backup",
	"composer.json": "composer", "composer.lock": "composer", "debug.log": "debug_log",
	"error.log": "debug_log", "error_log": "debug_log",
}

// backupSuffixes end editor leftovers, dumps and state files; like
// archiveNames they count only when the site answers 4xx, since sites do
// serve .sql schemas and compressed dumps (a "restore-from-backup.sql.gz").
var backupSuffixes = []string{".bak", ".swp", ".sql", ".sql.gz", ".sql.zip", ".sql.bz2", ".sql.tar", ".sql.7z", ".sql.rar", ".tfstate", "~"}

// SensitiveFile reports whether path asks for a file that public sites do
// not serve (version-control folders, .env files, credentials, backups)
// and names it. Matching is per path segment and case-insensitive, so
// "/repo.git/info/refs" or "/environment" do not match.
func SensitiveFile(path string) (string, bool) {
	ev, _, ok := sensitiveFile(path)
	return ev, ok
}

// sensitiveFile is SensitiveFile with the strength of the evidence: strong
// names (a VCS folder, .env, a key, wp-config) count whatever the answer;
// the others (archives, dumps, leftovers) only when answered 4xx.
func sensitiveFile(path string) (ev string, strong, ok bool) {
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
		if ev, strong, ok := sensitiveSegment(low); ok {
			return ev, strong, true
		}
	}
	return "", false, false
}

// fileLike is a cheap gate: only segments with a dot, a trailing "~" or the
// few dotless names of the lists are worth lowercasing.
func fileLike(s string) bool {
	if strings.IndexByte(s, '.') >= 0 || s[len(s)-1] == '~' {
		return true
	}
	// lengths first: EqualFold walks the strings even when they differ
	return (len(s) > 3 && (s[0]|0x20) == 'i' && (s[1]|0x20) == 'd' && s[2] == '_') ||
		(len(s) == len("server-status") && strings.EqualFold(s, "server-status")) ||
		(len(s) == len("error_log") && strings.EqualFold(s, "error_log"))
}

func sensitiveSegment(low []byte) (string, bool, bool) {
	if low[0] == '.' {
		if string(low) == ".well-known" {
			return "", false, false
		}
		if ev, ok := dotNames[string(low)]; ok {
			return ev, true, true
		}
		if string(low) == ".env" || hasPrefixBytes(low, ".env.") {
			return "env", true, true
		}
		// editor leftovers of a hidden file (".index.php.swp") fall through
	}
	// wp-config.php and every copy of it (wp-config.php.bak, wp-config.old)
	if hasPrefixBytes(low, "wp-config") || hasPrefixBytes(low, ".wp-config") {
		return "wp-config", true, true
	}
	if ev, ok := fileNames[string(low)]; ok {
		return ev, true, true
	}
	if ev, ok := archiveNames[string(low)]; ok {
		return ev, false, true
	}
	for _, suf := range backupSuffixes {
		if hasSuffixBytes(low, suf) && len(low) > len(suf) {
			return "backup", false, true
		}
	}
	return "", false, false
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
// any reports whether s holds a byte of the set.
func (b *byteSet) any(s string) bool {
	for i := 0; i < len(s); i++ {
		if b[s[i]>>6]&(1<<(s[i]&63)) != 0 {
			return true
		}
	}
	return false
}

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
