package edge_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthpost/healthpost/edge"
)

func writeConfig(tb testing.TB, body string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "healthpost.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestLoadConfig_Precedence(t *testing.T) {
	path := writeConfig(t, `
data_dir = "/srv/hp"
[facility]
name = "PHC Rampur"
hfr_id = "IN0910034387"
[http]
listen = ":8081"
[mqtt]
password = "s3cret-broker-pass"
`)
	cfg, err := edge.LoadConfig(edge.LoadOptions{
		Path:  path,
		Env:   []string{"HEALTHPOST_HTTP_LISTEN=:8082", "HEALTHPOST_FACILITY_DISTRICT=Barabanki", "PATH=/usr/bin"},
		Flags: []edge.FlagValue{{Key: "http.listen", Flag: "http", Value: "127.0.0.1:8083"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Ensure file beats defaults, env beats file, flags beat env, and each source is recorded.
	checks := []struct{ got, want string }{
		{cfg.DataDir, "/srv/hp"},
		{cfg.Sources["data_dir"], path},
		{cfg.Facility.Name, "PHC Rampur"},
		{cfg.Facility.District, "Barabanki"},
		{cfg.Sources["facility.district"], "env HEALTHPOST_FACILITY_DISTRICT"},
		{cfg.HTTP.Listen, "127.0.0.1:8083"},
		{cfg.Sources["http.listen"], "flag --http"},
		{cfg.MQTT.Listen, ":1883"},
		{cfg.Sources["mqtt.listen"], "default"},
		{cfg.DBPath(), "/srv/hp/healthpost.db"},
	}
	for i, c := range checks {
		if c.got != c.want {
			t.Errorf("check %d: got %q, want %q", i, c.got, c.want)
		}
	}
	// Ensure secrets never appear in what config show prints.
	out := cfg.TOML()
	if strings.Contains(out, "s3cret") || !strings.Contains(out, `password = "********"`) {
		t.Fatalf("TOML does not mask the secret:\n%s", out)
	}
	for _, st := range cfg.Settings() {
		if strings.Contains(st.Value, "s3cret") {
			t.Fatalf("Settings leaks the secret in %s", st.Key)
		}
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	cases := []struct {
		name string
		file string
		env  []string
		// Each must appear in the message.
		want []string
	}{
		{"UnknownKey", "[facility]\nnmae = \"PHC\"\n", nil, []string{"facility.nmae", "unknown key", "healthpost.toml"}},
		{"UnknownSection", "[facilty]\nname = \"PHC\"\n", nil, []string{"facilty", "unknown key"}},
		{"WrongType", "[storage]\nlow_free_mb = \"lots\"\n", nil, []string{"healthpost.toml", "low_free_mb"}},
		{"Syntax", "[http\nlisten = \":80\"\n", nil, []string{"healthpost.toml line "}},
		{"BadHFR", "[facility]\nhfr_id = \"12345\"\n", nil, []string{"facility.hfr_id", "healthpost.toml", "IN followed by 10"}},
		{"BadListen", "[http]\nlisten = \"eighty\"\n", nil, []string{"http.listen", "healthpost.toml"}},
		{"Watermarks", "[storage]\nlow_free_mb = 50\ncritical_free_mb = 100\n", nil, []string{"storage.low_free_mb", "more than storage.critical_free_mb"}},
		{"BadLogLevel", "[log]\nlevel = \"loud\"\n", nil, []string{"log.level", "loud"}},
		{"BadEnvValue", "", []string{"HEALTHPOST_STORAGE_RAW_KEEP_DAYS=soon"}, []string{"env HEALTHPOST_STORAGE_RAW_KEEP_DAYS", "storage.raw_keep_days", "whole number"}},
		{"UnknownEnv", "", []string{"HEALTHPOST_DATADIR=/tmp"}, []string{"HEALTHPOST_DATADIR", "unknown variable", "HEALTHPOST_DATA_DIR"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Ensure a bad config stops start-up with a message naming the key and where it came from.
			path := writeConfig(t, tc.file)
			_, err := edge.LoadConfig(edge.LoadOptions{Path: path, Env: tc.env})
			if err == nil {
				t.Fatal("bad config accepted")
			}
			var ce *edge.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err=%T %v, want *edge.ConfigError", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not mention %q", err.Error(), w)
				}
			}
		})
	}
	t.Run("MissingExplicitFile", func(t *testing.T) {
		_, err := edge.LoadConfig(edge.LoadOptions{Path: "/nonexistent/healthpost.toml"})
		if err == nil || !strings.Contains(err.Error(), "/nonexistent/healthpost.toml") {
			t.Fatalf("err=%v, want it to name the missing file", err)
		}
	})
}

// A command typed by hand reads the service's secrets file, as systemd's
// EnvironmentFile= gives it to the service, and the environment still wins.
func TestLoadConfig_SecretsFileBesideConfig(t *testing.T) {
	path := writeConfig(t, "[upstream]\nurl = \"https://hub.district.example/fhir\"\n")
	secrets := filepath.Join(filepath.Dir(path), edge.SecretsFileName)
	write := func(body string) {
		if err := os.WriteFile(secrets, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# the hub's token\n\nexport HEALTHPOST_UPSTREAM_TOKEN=\"tok-from-file\"\n;HEALTHPOST_MQTT_PASSWORD=commented\nHEALTHPOST_MQTT_PASSWORD='broker pass'\n")
	cfg, err := edge.LoadConfig(edge.LoadOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.Token != "tok-from-file" || cfg.Sources["upstream.token"] != "secrets HEALTHPOST_UPSTREAM_TOKEN" {
		t.Fatalf("token %q from %q", cfg.Upstream.Token, cfg.Sources["upstream.token"])
	}
	if cfg.MQTT.Password != "broker pass" {
		t.Fatalf("mqtt password %q: quotes not removed or commented line read", cfg.MQTT.Password)
	}
	cfg, err = edge.LoadConfig(edge.LoadOptions{Path: path, Env: []string{"HEALTHPOST_UPSTREAM_TOKEN=tok-from-env"}})
	if err != nil || cfg.Upstream.Token != "tok-from-env" {
		t.Fatalf("environment does not win over the secrets file: %q, %v", cfg.Upstream.Token, err)
	}

	// Ensure a bad secrets file stops loading with a message naming it.
	for _, body := range []string{"HEALTHPOST_UPSTREAM_TOKN=x\n", "just a token\n"} {
		write(body)
		_, err := edge.LoadConfig(edge.LoadOptions{Path: path})
		var ce *edge.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), secrets) {
			t.Fatalf("secrets file %q: error %v, want a ConfigError naming %s", body, err, secrets)
		}
	}
}
