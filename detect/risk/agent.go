package risk

import (
	"strconv"

	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// DeviceClass is the kind of client a User-Agent describes.
type DeviceClass uint8

// The device classes. Script is an HTTP library or an attack tool (curl,
// python-requests, Go-http-client, okhttp, hydra, sqlmap …): no person
// types a password into those. Bot is a crawler or a headless browser.
const (
	DeviceUnknown DeviceClass = iota
	DeviceDesktop
	DeviceMobile
	DeviceTablet
	DeviceTV
	DeviceBot
	DeviceScript
)

var deviceNames = [...]string{"unknown", "desktop", "mobile", "tablet", "tv", "bot", "script"}

func (d DeviceClass) String() string {
	if int(d) < len(deviceNames) {
		return deviceNames[d]
	}
	return "unknown"
}

// Agent is what the model keeps of a User-Agent: the browser family and
// major version (a minor update changes nothing), the OS family and the
// device class. Every string is one of the parser's constants or of the
// script names below, never text from the request.
type Agent struct {
	Browser string // "Chrome", "Safari", "curl"; "" when unknown
	Major   int    // the browser's major version; 0 when unknown or a script
	OS      string // "Windows", "iOS"; "" when unknown
	Device  DeviceClass
}

// BrowserName is the browser feature's value as events show it.
func (a Agent) BrowserName() string {
	if a.Major == 0 {
		return a.Browser
	}
	return a.Browser + " " + strconv.Itoa(a.Major)
}

// MaxAgentBytes bounds how much of a User-Agent is parsed. Real ones stay
// well below it; the rest of a longer one is ignored, so a huge header
// costs no more than this.
const MaxAgentBytes = 512

// maxMajor bounds a parsed major version, so that an absurd one ("Chrome/
// 99999999999999999999") is still one value among few.
const maxMajor = 9999

// parser is the trie built once from the library's embedded data
// (github.com/medama-io/go-useragent: zero allocations and about a
// microsecond per parse, where regular-expression parsers such as uap-go
// take several to tens of microseconds).
var parser = useragent.NewParser()

// ParseAgent reads a User-Agent. It never fails: an empty one is a script
// (every browser sends one), one the parser does not recognise is
// DeviceUnknown. Only the first MaxAgentBytes are looked at, and a panic
// in the parser on hostile input is caught rather than taking the login
// path down.
func ParseAgent(ua string) (a Agent) {
	if ua == "" {
		return Agent{Browser: "none", Device: DeviceScript}
	}
	if len(ua) > MaxAgentBytes {
		ua = ua[:MaxAgentBytes]
	}
	if name, ok := scriptName(ua); ok {
		return Agent{Browser: name, Device: DeviceScript}
	}
	defer func() {
		if recover() != nil {
			a = Agent{}
		}
	}()
	p := parser.Parse(ua)
	a = Agent{Browser: string(p.Browser()), OS: string(p.OS()), Device: deviceOf(p.Device())}
	if a.Browser != "" {
		a.Major = majorOf(p.BrowserVersion())
	}
	if a.Device == DeviceUnknown && a.Browser != "" {
		a.Device = DeviceDesktop // a browser the parser knows, on no device it names
	}
	return a
}

func deviceOf(d agents.Device) DeviceClass {
	switch d {
	case agents.DeviceDesktop:
		return DeviceDesktop
	case agents.DeviceMobile:
		return DeviceMobile
	case agents.DeviceTablet:
		return DeviceTablet
	case agents.DeviceTV:
		return DeviceTV
	case agents.DeviceBot:
		return DeviceBot
	}
	return DeviceUnknown
}

// majorOf reads the leading digits of a version ("124.0.6367.82" → 124).
func majorOf(v string) int {
	n := 0
	for i := 0; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
		n = n*10 + int(v[i]-'0')
		if n > maxMajor {
			return maxMajor
		}
	}
	return n
}

// keys are the agent's keys for the Browser, OS and Device features. The
// browser's key is the family's hash with the major version in its low 16
// bits, so that the keys of the previous versions are known (see
// versionNear).
func (a Agent) keys() (browser, os, device uint64) {
	b := fnvString(featureSeed(Browser), a.Browser)&^0xffff | uint64(a.Major)
	return b, fnvString(featureSeed(OS), a.OS), fnvBytes(featureSeed(Device), []byte{byte(a.Device)})
}

// versionNear sets the keys of the two major versions before the agent's
// browser key b. A browser updates itself every few weeks: the version a
// user had before counts for the one they have now. (With no version, the
// keys end in 0xffff and 0xfffe, which no version reaches.)
func versionNear(near *[NumNear]uint64, b uint64) {
	for i := range NearVersions {
		near[NearHours+i] = b&^0xffff | (b-uint64(i)-1)&0xffff
	}
}
