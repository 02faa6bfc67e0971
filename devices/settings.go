package devices

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/healthpost/healthpost/devices/vitals"
	"github.com/healthpost/healthpost/edge"
)

// Settings are a device's transport and codec settings, kept as JSON in the
// registry (edge.Device.Settings).
type Settings struct {
	// Serial transport.
	Port     string `json:"port,omitempty"`      // /dev/ttyUSB0 or a stable /dev/healthpost/... name
	Baud     int    `json:"baud,omitempty"`      // default 9600
	DataBits int    `json:"data_bits,omitempty"` // default 8
	Parity   string `json:"parity,omitempty"`    // none, even, odd; default none
	StopBits int    `json:"stop_bits,omitempty"` // 1 or 2; default 1

	// MLLP over TCP: the address the node listens on for this device.
	Listen string `json:"listen,omitempty"`

	// Strict refuses frames that break the protocol; lenient (the default)
	// accepts what real analyzers send and counts the deviations.
	Strict bool `json:"strict,omitempty"`

	// Line-oriented ASCII: a regular expression with named groups "value"
	// and optionally "unit" and "code", and the code and unit to use when the
	// line does not carry them.
	Pattern string `json:"pattern,omitempty"`
	Code    string `json:"code,omitempty"` // LOINC code, e.g. 29463-7 for a scale
	Unit    string `json:"unit,omitempty"` // UCUM or as printed, e.g. kg

	// Codes maps the device's vendor codes to LOINC codes (an analyzer's GLU).
	Codes map[string]string `json:"codes,omitempty"`
}

// Serial defaults.
const (
	DefaultBaud     = 9600
	DefaultDataBits = 8
	DefaultStopBits = 1
)

// ParseSettings reads and checks a device's settings for its transport and
// codec, filling defaults. Errors name the setting and the fix.
func ParseSettings(d edge.Device) (Settings, error) {
	var s Settings
	if d.Settings != "" {
		if err := json.Unmarshal([]byte(d.Settings), &s); err != nil {
			return s, fmt.Errorf("settings of %s are not valid JSON: %v", d.Name, err)
		}
	}
	if s.Baud == 0 {
		s.Baud = DefaultBaud
	}
	if s.DataBits == 0 {
		s.DataBits = DefaultDataBits
	}
	if s.StopBits == 0 {
		s.StopBits = DefaultStopBits
	}
	if s.Parity == "" {
		s.Parity = "none"
	}
	switch d.Transport {
	case "serial":
		if s.Port == "" {
			return s, fmt.Errorf("%s has no serial port; set \"port\", for example /dev/ttyUSB0", d.Name)
		}
		switch s.Parity {
		case "none", "even", "odd":
		default:
			return s, fmt.Errorf("%s: parity %q must be none, even or odd", d.Name, s.Parity)
		}
		if s.DataBits < 5 || s.DataBits > 8 || (s.StopBits != 1 && s.StopBits != 2) || s.Baud < 300 || s.Baud > 921600 {
			return s, fmt.Errorf("%s: serial framing %d baud %d%s%d is not possible", d.Name, s.Baud, s.DataBits, s.Parity[:1], s.StopBits)
		}
	case "mllp":
		if s.Listen == "" {
			return s, fmt.Errorf("%s has no listen address; set \"listen\", for example :2575", d.Name)
		}
	}
	if d.Codec == "line" {
		if s.Pattern == "" {
			return s, fmt.Errorf("%s reads lines but has no \"pattern\"; for a scale printing \"WT: 62.4 kg\" use \"WT:\\s*(?P<value>[0-9.]+)\\s*(?P<unit>kg|lb)\"", d.Name)
		}
		re, err := regexp.Compile(s.Pattern)
		if err != nil {
			return s, fmt.Errorf("%s: pattern does not compile: %v", d.Name, err)
		}
		if re.SubexpIndex("value") < 0 {
			return s, fmt.Errorf("%s: pattern has no (?P<value>...) group", d.Name)
		}
		if s.Code == "" && re.SubexpIndex("code") < 0 {
			return s, fmt.Errorf("%s: set \"code\" (a LOINC code such as 29463-7) or a (?P<code>...) group", d.Name)
		}
	}
	if err := vitals.ValidateLocal(s.Codes); err != nil {
		return s, fmt.Errorf("%s: code table: %v", d.Name, err)
	}
	return s, nil
}
