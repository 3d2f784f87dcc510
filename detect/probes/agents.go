package probes

import (
	"strings"
	"sync"
)

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
// check. It holds at most maxAgentVerdicts entries, in two generations: new
// verdicts go into the current one (m); when that holds half the bound it
// becomes the previous one (prev) and the old previous one is dropped. An
// agent found in prev moves back into m, so the agents dropped are those
// not seen for longest, and a flood of random agents costs only the checks
// themselves. OnEvict, when set before first use, is told how many verdicts
// each turnover dropped (a metric: it must not block).
type AgentVerdicts struct {
	OnEvict func(n int)

	mu   sync.RWMutex
	m    map[string]string // the current generation: agent -> scanner name, "" for none
	prev map[string]string // the previous one, dropped at the next turnover
}

const maxAgentVerdicts = 4096

// Check is ScannerAgent through the cache.
func (c *AgentVerdicts) Check(ua string) (string, bool) {
	if len(ua) < 4 {
		return "", false
	}
	c.mu.RLock()
	name, current := c.m[ua]
	old, inPrev := c.prev[ua]
	c.mu.RUnlock()
	if current {
		return name, name != ""
	}
	if inPrev {
		name = old
	} else {
		name, _ = ScannerAgent(ua)
	}
	if len(ua) <= maxAgent {
		c.mu.Lock()
		dropped := c.keep(ua, name)
		c.mu.Unlock()
		if dropped > 0 && c.OnEvict != nil {
			c.OnEvict(dropped)
		}
	}
	return name, name != ""
}

// keep puts a verdict in the current generation, turning the generations
// over when it is full, and returns how many verdicts that dropped. The
// generations stay disjoint, so the count is exact. The caller holds the
// lock.
func (c *AgentVerdicts) keep(ua, name string) int {
	delete(c.prev, ua)
	dropped := 0
	if c.m == nil || len(c.m) >= maxAgentVerdicts/2 {
		dropped = len(c.prev)
		c.prev, c.m = c.m, make(map[string]string, 64)
	}
	c.m[ua] = name
	return dropped
}
