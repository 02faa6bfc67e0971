package syncq

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/healthpost/healthpost/edge"
)

// NewClientFromConfig builds the upstream client from the [upstream]
// section: URL, token, CA, client certificate, mode and timeout. It returns
// ErrNoUpstream when no URL is set.
func NewClientFromConfig(u edge.UpstreamConfig) (*Client, error) {
	if u.URL == "" {
		return nil, ErrNoUpstream
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read upstream.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.ca_file %s holds no PEM certificate", u.CAFile)
		}
		tc.RootCAs = pool
	}
	if u.CertFile != "" || u.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(u.CertFile, u.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load upstream.cert_file and upstream.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	c, err := NewClient(u.URL, tc)
	if err != nil {
		return nil, err
	}
	c.Token = u.Token
	if u.Mode != "" {
		c.Mode = u.Mode
	}
	if u.Timeout > 0 {
		c.Timeout = u.Timeout
	}
	return c, nil
}

// NewEngineFromConfig builds the engine for cfg's upstream, mapping with m.
// It returns ErrNoUpstream when no URL is set, so the caller can leave
// delivery off.
func NewEngineFromConfig(s *edge.Store, cfg *edge.Config, m Mapper) (*Engine, error) {
	if err := cfg.ValidateUpstream(); err != nil {
		return nil, err
	}
	c, err := NewClientFromConfig(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	e := NewEngine(s, c, m)
	u := cfg.Upstream
	if u.Workers > 0 {
		e.Workers = u.Workers
	}
	if u.Batch > 0 {
		e.BatchSize = u.Batch
	}
	if e.Windows, err = ParseWindows(u.Windows); err != nil {
		return nil, &edge.ConfigError{Key: "upstream.windows", Source: cfg.Sources["upstream.windows"], Problem: err.Error()}
	}
	e.DailyBudget = u.DailyBudgetMB << 20
	return e, nil
}
