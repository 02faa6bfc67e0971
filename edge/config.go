package edge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the node's configuration: built-in defaults, overridden by the
// config file, then by HEALTHPOST_* environment variables, then by flags.
type Config struct {
	// DataDir holds the database and the node's lock file.
	DataDir string `toml:"data_dir" help:"directory for the database and lock file"`

	Facility FacilityConfig `toml:"facility"`
	HTTP     HTTPConfig     `toml:"http"`
	MQTT     MQTTConfig     `toml:"mqtt"`
	Storage  StorageConfig  `toml:"storage"`
	Log      LogConfig      `toml:"log"`
	Upstream UpstreamConfig `toml:"upstream"`

	// File is the config file that was read, or "" for none.
	File string `toml:"-"`
	// Sources says where each key's value came from: "default", the file,
	// "secrets HEALTHPOST_X" (the secrets file), "env HEALTHPOST_X" or
	// "flag --x".
	Sources map[string]string `toml:"-"`
	// SecretsUnreadable names the secrets file beside the config file when
	// this process may not read it (a command run without sudo).
	SecretsUnreadable string `toml:"-"`
}

// FacilityConfig is the facility's identity.
type FacilityConfig struct {
	Name     string `toml:"name" help:"facility name shown on slips and pages"`
	HFRID    string `toml:"hfr_id" help:"Health Facility Registry ID, IN followed by 10 letters or digits"`
	District string `toml:"district"`
	State    string `toml:"state"`
	// NodeID names this node to the hub; empty means the ID generated at first start.
	NodeID string `toml:"node_id" help:"this node's name at the hub; empty uses the generated one"`
}

// HTTPConfig is the web UI's listener.
type HTTPConfig struct {
	Listen string `toml:"listen" help:"address the web UI listens on"`
	MDNS   bool   `toml:"mdns" help:"announce the web UI on the LAN with mDNS (service _http._tcp, instance healthpost)"`
}

// MQTTConfig is device ingestion over MQTT.
type MQTTConfig struct {
	Listen   string `toml:"listen" help:"address of the embedded MQTT broker; empty turns it off"`
	Broker   string `toml:"broker" help:"external broker URL (tcp://host:1883); empty uses the embedded broker"`
	Username string `toml:"username"`
	Password string `toml:"password" secret:"true"`
}

// StorageConfig sets the disk watermarks.
type StorageConfig struct {
	LowFreeMB      int64 `toml:"low_free_mb" help:"below this many MB free, raw frames are dropped and delivered records pruned"`
	CriticalFreeMB int64 `toml:"critical_free_mb" help:"below this many MB free, new records are refused"`
	RawKeepDays    int   `toml:"raw_keep_days" help:"days raw device frames are kept"`
}

// LogConfig sets logging.
type LogConfig struct {
	Level  string `toml:"level" help:"debug, info, warn or error"`
	Format string `toml:"format" help:"text or json"`
}

// Installed config and data paths, used when the binary runs from /usr/bin.
const (
	InstalledConfigPath = "/etc/healthpost/healthpost.toml"
	InstalledDataDir    = "/var/lib/healthpost"
	LocalConfigPath     = "healthpost.toml"
	// SecretsFileName is the file beside the config file that holds secrets
	// as HEALTHPOST_X=value lines, readable by root only (the package makes
	// /etc/healthpost/secrets.env; systemd reads it with EnvironmentFile=).
	SecretsFileName = "secrets.env"
	LocalDataDir    = "healthpost-data"
	EnvPrefix       = "HEALTHPOST_"
)

// Installed reports whether this binary runs as installed by the package.
func Installed() bool {
	exe, err := os.Executable()
	return err == nil && strings.HasPrefix(exe, "/usr/bin/")
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	dataDir := LocalDataDir
	if Installed() {
		dataDir = InstalledDataDir
	}
	return Config{
		DataDir:  dataDir,
		Facility: FacilityConfig{Name: "Health Centre"},
		HTTP:     HTTPConfig{Listen: ":8080", MDNS: true},
		MQTT:     MQTTConfig{Listen: ":1883"},
		Storage:  StorageConfig{LowFreeMB: DefaultLowFreeBytes >> 20, CriticalFreeMB: DefaultCriticalFree >> 20, RawKeepDays: DefaultRawKeepDays},
		Log:      LogConfig{Level: "info", Format: "text"},
	}
}

// ConfigError names the key, where its value came from, and what is wrong.
type ConfigError struct {
	Key     string
	Source  string
	Problem string
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", e.Source, e.Problem)
	}
	return fmt.Sprintf("%s: %s: %s", e.Source, e.Key, e.Problem)
}

// LoadOptions are the inputs of LoadConfig.
type LoadOptions struct {
	// Path is the config file given with --config; "" searches the defaults.
	Path string
	// Env is the environment, as os.Environ returns it.
	Env []string
	// Flags are values given on the command line, by config key ("data_dir",
	// "http.listen"), with the flag's name for messages.
	Flags []FlagValue
}

// FlagValue is one command-line override.
type FlagValue struct {
	Key, Flag, Value string
}

// LoadConfig builds the effective configuration and validates it.
func LoadConfig(opts LoadOptions) (*Config, error) {
	cfg := DefaultConfig()
	cfg.Sources = map[string]string{}
	fields := configFields(&cfg)
	for _, f := range fields {
		cfg.Sources[f.key] = "default"
	}

	path := opts.Path
	if path == "" {
		path = envValue(opts.Env, EnvPrefix+"CONFIG")
	}
	explicit := path != ""
	if !explicit {
		for _, p := range []string{InstalledConfigPath, LocalConfigPath} {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path != "" {
		if err := cfg.readFile(path, fields); err != nil {
			if !explicit || !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			return nil, &ConfigError{Source: path, Problem: "config file not found; check the path given to --config"}
		}
	}

	byEnv := map[string]configField{}
	for _, f := range fields {
		byEnv[f.env] = f
	}
	// setVars applies HEALTHPOST_* variables; from names where they came from
	// in the message of an unknown one, label in Sources and other messages.
	setVars := func(vars []string, from, label string) error {
		for _, kv := range vars {
			name, val, _ := strings.Cut(kv, "=")
			if !strings.HasPrefix(name, EnvPrefix) || name == EnvPrefix+"CONFIG" {
				continue
			}
			f, ok := byEnv[name]
			if !ok {
				return &ConfigError{Source: from, Key: name, Problem: "unknown variable; known ones are " + strings.Join(envNames(fields), ", ")}
			}
			if err := f.set(val); err != nil {
				return &ConfigError{Source: label + " " + name, Key: f.key, Problem: err.Error()}
			}
			cfg.Sources[f.key] = label + " " + name
		}
		return nil
	}
	// The secrets file beside the config file: what the service gets through
	// systemd's EnvironmentFile=, so that a command typed by hand (sudo
	// healthpost sync now) sees the same token. The environment still wins.
	if path != "" {
		secrets := filepath.Join(filepath.Dir(path), SecretsFileName)
		vars, err := readSecretsFile(secrets)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case errors.Is(err, os.ErrPermission):
			cfg.SecretsUnreadable = secrets
		case err != nil:
			return nil, &ConfigError{Source: secrets, Problem: err.Error()}
		default:
			if err := setVars(vars, secrets, "secrets"); err != nil {
				return nil, err
			}
		}
	}
	if err := setVars(opts.Env, "environment", "env"); err != nil {
		return nil, err
	}
	for _, fv := range opts.Flags {
		f, ok := fieldByKey(fields, fv.Key)
		if !ok {
			return nil, fmt.Errorf("flag --%s: no config key %q", fv.Flag, fv.Key)
		}
		if err := f.set(fv.Value); err != nil {
			return nil, &ConfigError{Source: "flag --" + fv.Flag, Key: f.key, Problem: err.Error()}
		}
		cfg.Sources[f.key] = "flag --" + fv.Flag
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) readFile(path string, fields []configField) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return err
		}
		return &ConfigError{Source: path, Problem: fmt.Sprintf("cannot read config file: %v", err)}
	}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &ConfigError{Source: fmt.Sprintf("%s line %d", path, pe.Position.Line), Key: pe.LastKey, Problem: pe.Message}
		}
		return &ConfigError{Source: path, Problem: err.Error()}
	}
	if und := md.Undecoded(); len(und) > 0 {
		return &ConfigError{Source: path, Key: und[0].String(), Problem: "unknown key; check its spelling (healthpost config show lists every key)"}
	}
	c.File = path
	for _, k := range md.Keys() {
		if _, ok := fieldByKey(fields, k.String()); ok {
			c.Sources[k.String()] = path
		}
	}
	return nil
}

var (
	hfrRe    = regexp.MustCompile(`^IN[A-Za-z0-9]{10}$`)
	nodeIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,63}$`)
)

// Validate checks every value and names the first bad key and its source.
func (c *Config) Validate() error {
	bad := func(key, problem string) error {
		src := c.Sources[key]
		if src == "" {
			src = "config"
		}
		return &ConfigError{Key: key, Source: src, Problem: problem}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		return bad("data_dir", "must not be empty")
	}
	if c.Facility.HFRID != "" && !hfrRe.MatchString(c.Facility.HFRID) {
		return bad("facility.hfr_id", fmt.Sprintf("%q is not an HFR facility ID: it must be IN followed by 10 letters or digits, like IN0910034387", c.Facility.HFRID))
	}
	if c.Facility.NodeID != "" && !nodeIDRe.MatchString(c.Facility.NodeID) {
		return bad("facility.node_id", "use 3 to 64 lowercase letters, digits and dashes")
	}
	if err := checkListen(c.HTTP.Listen); err != nil || c.HTTP.Listen == "" {
		return bad("http.listen", fmt.Sprintf("%q is not a listen address like :8080 or 192.168.1.10:8080", c.HTTP.Listen))
	}
	if c.MQTT.Listen != "" {
		if err := checkListen(c.MQTT.Listen); err != nil {
			return bad("mqtt.listen", fmt.Sprintf("%q is not a listen address like :1883", c.MQTT.Listen))
		}
	}
	if c.MQTT.Broker != "" && !regexp.MustCompile(`^(tcp|ssl|tls|mqtt|mqtts|ws|wss)://[^\s/]+$`).MatchString(c.MQTT.Broker) {
		return bad("mqtt.broker", "must be a broker URL like tcp://192.168.1.20:1883")
	}
	if c.Storage.CriticalFreeMB < 1 {
		return bad("storage.critical_free_mb", "must be at least 1")
	}
	if c.Storage.LowFreeMB <= c.Storage.CriticalFreeMB {
		return bad("storage.low_free_mb", fmt.Sprintf("must be more than storage.critical_free_mb (%d)", c.Storage.CriticalFreeMB))
	}
	if c.Storage.RawKeepDays < 0 {
		return bad("storage.raw_keep_days", "must not be negative")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		return bad("log.level", fmt.Sprintf("%q is not one of debug, info, warn, error", c.Log.Level))
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		return bad("log.format", fmt.Sprintf("%q is not text or json", c.Log.Format))
	}
	return c.ValidateUpstream()
}

func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("bad port")
	}
	return nil
}

// DBPath is the database file in the data directory.
func (c *Config) DBPath() string { return filepath.Join(c.DataDir, DBFileName) }

// NewLogger returns the logger the config asks for, writing to w.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Setting is one effective key for display; secrets are masked.
type Setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
	Env    string `json:"env"`
	Help   string `json:"help,omitempty"`
}

// Settings lists every key with its effective value and source.
func (c *Config) Settings() []Setting {
	var out []Setting
	for _, f := range configFields(c) {
		v := fmt.Sprint(f.v.Interface())
		if f.secret && v != "" {
			v = "********"
		}
		out = append(out, Setting{Key: f.key, Value: v, Source: c.Sources[f.key], Env: f.env, Help: f.help})
	}
	return out
}

// TOML renders the effective config as a TOML file, secrets masked, each key
// annotated with where its value came from.
func (c *Config) TOML() string {
	var b strings.Builder
	section := ""
	for _, f := range configFields(c) {
		sec, name := "", f.key
		if i := strings.LastIndexByte(f.key, '.'); i >= 0 {
			sec, name = f.key[:i], f.key[i+1:]
		}
		if sec != section {
			fmt.Fprintf(&b, "\n[%s]\n", sec)
			section = sec
		}
		var val string
		switch x := f.v.Interface().(type) {
		case string:
			if f.secret && x != "" {
				x = "********"
			}
			val = strconv.Quote(x)
		default:
			val = fmt.Sprint(x)
		}
		fmt.Fprintf(&b, "%s = %s  # %s\n", name, val, c.Sources[f.key])
	}
	return strings.TrimLeft(b.String(), "\n")
}

type configField struct {
	key, env, help string
	secret         bool
	v              reflect.Value
}

func (f configField) set(s string) error {
	switch f.v.Kind() {
	case reflect.String:
		f.v.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.v.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.v.SetBool(b)
	default:
		if f.v.Type() == reflect.TypeFor[time.Duration]() {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration like 30s or 5m", s)
			}
			f.v.SetInt(int64(d))
			return nil
		}
		return fmt.Errorf("cannot set a %s", f.v.Type())
	}
	return nil
}

func configFields(c *Config) []configField {
	var out []configField
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("toml")
			if tag == "" || tag == "-" {
				continue
			}
			key := prefix + tag
			if sf.Type.Kind() == reflect.Struct {
				walk(v.Field(i), key+".")
				continue
			}
			out = append(out, configField{
				key: key, env: EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_")),
				help: sf.Tag.Get("help"), secret: sf.Tag.Get("secret") == "true", v: v.Field(i),
			})
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return out
}

func fieldByKey(fields []configField, key string) (configField, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return configField{}, false
}

func envNames(fields []configField) []string {
	var out []string
	for _, f := range fields {
		out = append(out, f.env)
	}
	return append(out, EnvPrefix+"CONFIG")
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// readSecretsFile reads VARIABLE=value lines as systemd's EnvironmentFile=
// does for the simple cases the package's secrets file holds: blank lines and
// lines starting with # or ; are skipped, "export " is allowed, and a value in
// matching single or double quotes loses them.
func readSecretsFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var vars []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, val, ok := strings.Cut(line, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("line %d is not VARIABLE=value", i+1)
		}
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		vars = append(vars, name+"="+val)
	}
	return vars, nil
}
