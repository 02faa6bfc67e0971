package edge

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// UpstreamConfig is where and how syncq delivers documents: the FHIR R4 base
// URL of the district hub (or any conformant FHIR R4 server), its
// credentials, and the limits of a metered link. Zero values mean the
// defaults syncq documents (DefaultWorkers and so on).
type UpstreamConfig struct {
	URL   string `toml:"url" help:"FHIR R4 base URL documents are delivered to, e.g. https://hub.district.example/fhir; empty turns delivery off"`
	Token string `toml:"token" secret:"true" help:"bearer token the upstream issued to this node ('healthpost hub token add NODE' on the hub)"`

	CAFile   string `toml:"ca_file" help:"PEM file of the CA that signed the upstream's certificate, when it is not a public CA"`
	CertFile string `toml:"cert_file" help:"client certificate (PEM), when the upstream authenticates nodes by certificate"`
	KeyFile  string `toml:"key_file" help:"private key (PEM) of cert_file"`

	Mode    string        `toml:"mode" help:"put (PUT Bundle/{id}, the default) or conditional (create only if no Bundle has the identifier)"`
	Batch   int           `toml:"batch" help:"documents per request when the upstream accepts batch bundles; 1 sends one at a time; 0 is the default (20)"`
	Workers int           `toml:"workers" help:"requests in flight at once; 0 is the default (4)"`
	Timeout time.Duration `toml:"timeout" help:"how long one request may take, e.g. 30s; 0 is the default (60s)"`

	Windows       string `toml:"windows" help:"local times the link may be used, e.g. 22:00-06:00,13:00-14:00; empty is any time (alerts always go)"`
	DailyBudgetMB int64  `toml:"daily_budget_mb" help:"megabytes delivery may move per day on a metered link; 0 is no limit (alerts always go)"`

	// USB export files ('healthpost export', 'healthpost import'), for
	// weeks without a link: the hub's two public keys, as 'healthpost hub
	// key' prints them.
	ExportKey  string        `toml:"export_key" help:"the hub's public key USB export files are encrypted to (age1...), as 'healthpost hub key' prints it; empty: no USB export"`
	ReceiptKey string        `toml:"receipt_key" help:"the hub's public key its receipts of USB export files are signed with, as 'healthpost hub key' prints it"`
	ExportWait time.Duration `toml:"export_wait" help:"how long documents in a USB export file wait for the hub's receipt before the link may send them again, e.g. 72h; 0 is the default (7 days)"`
}

// DefaultExportWait is how long an exported document waits for its receipt
// before online delivery may send it again: a week, one round trip of a
// stick to the district office and back on the weekly visit, after which the
// stick is taken as lost. Sending again is safe (upstream writes are
// idempotent) and confirms the document too.
const DefaultExportWait = 7 * 24 * time.Hour

// Shapes of the hub's keys: an age X25519 recipient, and a base64 Ed25519
// public key.
var (
	exportKeyRe  = regexp.MustCompile(`^age1[02-9ac-hj-np-z]{58}$`)
	receiptKeyRe = regexp.MustCompile(`^[A-Za-z0-9+/]{43}=$`)
)

// Upstream modes.
const (
	UpstreamModePut         = "put"
	UpstreamModeConditional = "conditional"
)

var windowRe = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$`)

// ValidateUpstream checks the [upstream] section and names the first bad key
// and where its value came from.
func (c *Config) ValidateUpstream() error {
	u := c.Upstream
	bad := func(key, problem string) error {
		src := c.Sources[key]
		if src == "" {
			src = "config"
		}
		return &ConfigError{Key: key, Source: src, Problem: problem}
	}
	if u.URL != "" {
		p, err := url.Parse(u.URL)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			return bad("upstream.url", fmt.Sprintf("%q is not a FHIR base URL like https://hub.example.org/fhir", u.URL))
		}
	}
	for key, f := range map[string]string{"upstream.ca_file": u.CAFile, "upstream.cert_file": u.CertFile, "upstream.key_file": u.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return bad(key, fmt.Sprintf("cannot read %s: %v", f, err))
		}
	}
	if (u.CertFile == "") != (u.KeyFile == "") {
		return bad("upstream.key_file", "cert_file and key_file go together: set both or neither")
	}
	switch u.Mode {
	case "", UpstreamModePut, UpstreamModeConditional:
	default:
		return bad("upstream.mode", fmt.Sprintf("%q is not put or conditional", u.Mode))
	}
	if u.Batch < 0 || u.Batch > 500 {
		return bad("upstream.batch", "must be between 0 and 500")
	}
	if u.Workers < 0 || u.Workers > 64 {
		return bad("upstream.workers", "must be between 0 and 64")
	}
	if u.Timeout < 0 {
		return bad("upstream.timeout", "must not be negative")
	}
	if u.DailyBudgetMB < 0 {
		return bad("upstream.daily_budget_mb", "must not be negative")
	}
	if u.ExportKey != "" && !exportKeyRe.MatchString(u.ExportKey) {
		return bad("upstream.export_key", "not a hub export key like age1qy...: copy it as 'healthpost hub key' prints it")
	}
	if u.ReceiptKey != "" && !receiptKeyRe.MatchString(u.ReceiptKey) {
		return bad("upstream.receipt_key", "not a hub receipt key (44 characters of base64): copy it as 'healthpost hub key' prints it")
	}
	if u.ExportWait < 0 {
		return bad("upstream.export_wait", "must not be negative")
	}
	for _, w := range strings.Split(u.Windows, ",") {
		if w = strings.TrimSpace(w); w != "" && !windowRe.MatchString(w) {
			return bad("upstream.windows", fmt.Sprintf("%q is not a time window like 22:00-06:00", w))
		}
	}
	return nil
}
