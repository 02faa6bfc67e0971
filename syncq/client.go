package syncq

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Defaults of the upstream client.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultProbeTimeout   = 10 * time.Second
	DefaultMaxAnswerBytes = 32 << 20
	fhirJSON              = "application/fhir+json"
)

// Client talks to one FHIR R4 server: the district hub or any conformant
// server. Every write is one that a retry cannot duplicate: PUT Bundle/{id}
// (ModePut), or a create conditional on the Bundle identifier
// (If-None-Exist) and, for later versions, an update conditional on it
// (ModeConditional). Request bodies are gzip-compressed; TLS certificates
// are verified.
type Client struct {
	// BaseURL is the FHIR base, without a trailing slash.
	BaseURL string
	// Token is sent as a bearer token when not empty.
	Token string
	// Mode is edge.UpstreamModePut or edge.UpstreamModeConditional.
	Mode string
	// Gzip compresses request bodies.
	Gzip bool
	// Timeout bounds each request.
	Timeout time.Duration
	// MaxAnswerBytes caps what is read of an answer.
	MaxAnswerBytes int64

	// HTTP does the requests; NewClient sets one whose connections count
	// the bytes on the wire.
	HTTP *http.Client

	now      func() time.Time
	bytesOut atomic.Int64
	bytesIn  atomic.Int64
}

// NewClient returns a client for the FHIR base URL with default settings:
// PUT by id, gzip, TLS verified against the system's roots (tlsConfig, when
// not nil, adds a CA or a client certificate).
func NewClient(baseURL string, tlsConfig *tls.Config) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q is not a FHIR base URL like https://hub.example.org/fhir", baseURL)
	}
	c := &Client{
		BaseURL:        strings.TrimRight(baseURL, "/"),
		Mode:           edge.UpstreamModePut,
		Gzip:           true,
		Timeout:        DefaultTimeout,
		MaxAnswerBytes: DefaultMaxAnswerBytes,
		now:            time.Now,
	}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig = tlsConfig.Clone()
	if tlsConfig.MinVersion == 0 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}
	dialer := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: conn, out: &c.bytesOut, in: &c.bytesIn}, nil
		},
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   15 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // the request's context bounds it
		ForceAttemptHTTP2:     true,
	}
	c.HTTP = &http.Client{
		Transport: tr,
		// A redirect of a write is not followed: the answer must come from
		// the server that stored the document.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// BytesOut and BytesIn are the bytes this client has put on and taken off
// the wire, TLS and headers included.
func (c *Client) BytesOut() int64 { return c.bytesOut.Load() }

// BytesIn: see BytesOut.
func (c *Client) BytesIn() int64 { return c.bytesIn.Load() }

type countingConn struct {
	net.Conn
	out, in *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// Capabilities is what the upstream's CapabilityStatement says.
type Capabilities struct {
	FHIRVersion string
	Batch       bool
}

// Probe reads the upstream's CapabilityStatement: a cheap request that says
// whether the link and the server are up before documents are sent.
func (c *Client) Probe(ctx context.Context) (Capabilities, error) {
	ctx, cancel := context.WithTimeout(ctx, min(c.timeout(), DefaultProbeTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/metadata", nil)
	if err != nil {
		return Capabilities{}, err
	}
	status, h, body, derr := c.do(req)
	if derr != nil {
		return Capabilities{}, derr
	}
	if status != http.StatusOK {
		return Capabilities{}, classify(status, h, body, c.clock())
	}
	var cs struct {
		ResourceType string `json:"resourceType"`
		FHIRVersion  string `json:"fhirVersion"`
		Rest         []struct {
			Interaction []struct {
				Code string `json:"code"`
			} `json:"interaction"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(body, &cs); err != nil || cs.ResourceType != "CapabilityStatement" {
		return Capabilities{}, &DeliveryError{Kind: KindServer, Status: status,
			Diagnostics: "GET metadata did not return a CapabilityStatement: is upstream.url the FHIR base URL?"}
	}
	caps := Capabilities{FHIRVersion: cs.FHIRVersion}
	for _, r := range cs.Rest {
		for _, in := range r.Interaction {
			if in.Code == "batch" {
				caps.Batch = true
			}
		}
	}
	return caps, nil
}

// Result is the outcome of sending one document: a receipt, or why not.
type Result struct {
	Receipt edge.Receipt
	Err     *DeliveryError
}

// Send delivers one document and checks the answer proves it was stored.
func (c *Client) Send(ctx context.Context, d *Document) Result {
	method, target := c.target(d)
	req, err := c.newWrite(ctx, method, target, d.Body)
	if err != nil {
		return Result{Err: &DeliveryError{Kind: KindServer, Err: err}}
	}
	if method == http.MethodPost {
		req.Header.Set("If-None-Exist", "identifier="+url.QueryEscape(d.Identifier.Token()))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	status, h, body, derr := c.do(req.WithContext(ctx))
	if derr != nil {
		return Result{Err: derr}
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return Result{Err: classify(status, h, body, c.clock())}
	}
	return c.confirm(ctx, d, body, h.Get("Location"))
}

// target is the method and URL of the write: PUT by id, or conditional on
// the identifier.
func (c *Client) target(d *Document) (method, target string) {
	if c.Mode == edge.UpstreamModeConditional {
		if d.Item.EntityVersion <= 1 {
			return http.MethodPost, "Bundle"
		}
		return http.MethodPut, "Bundle?identifier=" + url.QueryEscape(d.Identifier.Token())
	}
	return http.MethodPut, "Bundle/" + d.ID
}

// confirm checks that a 2xx answer proves the document is stored. A server
// that answered with no body (it ignored Prefer: return=representation) is
// asked for the Location it named, or the Bundle by id.
func (c *Client) confirm(ctx context.Context, d *Document, body []byte, location string) Result {
	byID := c.Mode != edge.UpstreamModeConditional
	if len(bytes.TrimSpace(body)) == 0 {
		if location == "" && byID {
			location = "Bundle/" + d.ID
		}
		if location == "" {
			return Result{Err: &DeliveryError{Kind: KindServer, Diagnostics: "the answer had neither the stored Bundle nor a Location"}}
		}
		var derr *DeliveryError
		if body, derr = c.read(ctx, location); derr != nil {
			return Result{Err: derr}
		}
	}
	id, version, problem := d.proves(body, byID)
	if problem != "" {
		return Result{Err: &DeliveryError{Kind: KindServer, Diagnostics: problem}}
	}
	return Result{Receipt: edge.Receipt{Upstream: c.BaseURL, RemoteID: id, RemoteVersion: version, At: c.clock()}}
}

// read GETs a resource by its location, relative to the base or absolute.
func (c *Client) read(ctx context.Context, location string) ([]byte, *DeliveryError) {
	u := location
	if !strings.HasPrefix(location, "http://") && !strings.HasPrefix(location, "https://") {
		u = c.BaseURL + "/" + strings.TrimPrefix(location, "/")
	}
	if !strings.HasPrefix(u, c.BaseURL+"/") {
		return nil, &DeliveryError{Kind: KindServer, Diagnostics: "the answer's Location is on another server"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &DeliveryError{Kind: KindServer, Err: err}
	}
	status, h, body, derr := c.do(req)
	if derr != nil {
		return nil, derr
	}
	if status != http.StatusOK {
		e := classify(status, h, body, c.clock())
		if e.Kind == KindRefused {
			e.Kind = KindServer // the read failed, not the document
		}
		return nil, e
	}
	return body, nil
}

// SendBatch delivers several documents in one FHIR batch Bundle and checks
// each entry of the batch-response. It returns ErrBatchRefused when the
// server refused the batch as such.
func (c *Client) SendBatch(ctx context.Context, docs []*Document) ([]Result, error) {
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"batch","entry":[`)
	for i, d := range docs {
		if i > 0 {
			b.WriteByte(',')
		}
		method, target := c.target(d)
		req := map[string]string{"method": method, "url": target}
		if method == http.MethodPost {
			req["ifNoneExist"] = "identifier=" + url.QueryEscape(d.Identifier.Token())
		}
		rj, _ := json.Marshal(req)
		if method == http.MethodPut && !strings.Contains(target, "?") {
			fmt.Fprintf(&b, `{"fullUrl":%q,"resource":`, c.BaseURL+"/"+target)
		} else {
			b.WriteString(`{"resource":`)
		}
		b.Write(d.Body)
		b.WriteString(`,"request":`)
		b.Write(rj)
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	req, err := c.newWrite(ctx, http.MethodPost, "", b.Bytes())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	all := func(e *DeliveryError) []Result {
		out := make([]Result, len(docs))
		for i := range out {
			out[i].Err = e
		}
		return out
	}
	status, h, body, derr := c.do(req.WithContext(ctx))
	if derr != nil {
		return all(derr), nil
	}
	if status != http.StatusOK {
		e := classify(status, h, body, c.clock())
		switch status {
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusNotImplemented:
			return nil, fmt.Errorf("%w: %v", ErrBatchRefused, e)
		}
		return all(e), nil
	}
	var resp struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
			Response struct {
				Status   string          `json:"status"`
				Location string          `json:"location"`
				Outcome  json.RawMessage `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.ResourceType != "Bundle" || resp.Type != "batch-response" {
		if oo, ok := parseOutcome(body); ok {
			return all(&DeliveryError{Kind: KindServer, Status: status, Code: oo.code(),
				Diagnostics: "a 200 with an OperationOutcome instead of a batch-response: " + oo.text()}), nil
		}
		return all(&DeliveryError{Kind: KindServer, Status: status, Diagnostics: "the answer to the batch is not a batch-response Bundle"}), nil
	}
	if len(resp.Entry) != len(docs) {
		return all(&DeliveryError{Kind: KindServer, Status: status,
			Diagnostics: fmt.Sprintf("the batch-response has %d entries for %d documents", len(resp.Entry), len(docs))}), nil
	}
	out := make([]Result, len(docs))
	for i, en := range resp.Entry {
		code, _ := strconv.Atoi(strings.Fields(en.Response.Status + " 0")[0])
		switch {
		case code == http.StatusOK || code == http.StatusCreated:
			out[i] = c.confirm(ctx, docs[i], en.Resource, en.Response.Location)
		case code == 0:
			out[i].Err = &DeliveryError{Kind: KindServer, Diagnostics: fmt.Sprintf("batch-response entry %d has no status", i)}
		default:
			out[i].Err = classify(code, http.Header{}, en.Response.Outcome, c.clock())
		}
	}
	return out, nil
}

var gzipPool = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.DefaultCompression); return w }}

// newWrite builds a write request with the body compressed.
func (c *Client) newWrite(ctx context.Context, method, target string, body []byte) (*http.Request, error) {
	u := c.BaseURL
	if target != "" {
		u += "/" + target
	}
	payload := body
	if c.Gzip {
		var b bytes.Buffer
		zw := gzipPool.Get().(*gzip.Writer)
		zw.Reset(&b)
		zw.Write(body)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		gzipPool.Put(zw)
		payload = b.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", fhirJSON+"; charset=utf-8")
	if c.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("Prefer", "return=representation")
	return req, nil
}

// do sends req with the common headers and reads the whole answer. Any
// failure to get a complete answer is a KindLink error.
func (c *Client) do(req *http.Request) (int, http.Header, []byte, *DeliveryError) {
	req.Header.Set("Accept", fhirJSON)
	req.Header.Set("User-Agent", "healthpost/"+edge.Version())
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, &DeliveryError{Kind: KindLink, Err: linkError(err)}
	}
	defer resp.Body.Close()
	limit := c.MaxAnswerBytes
	if limit <= 0 {
		limit = DefaultMaxAnswerBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, resp.Header, nil, &DeliveryError{Kind: KindLink, Status: resp.StatusCode,
			Diagnostics: "the answer was cut off", Err: linkError(err)}
	}
	if int64(len(body)) > limit {
		return resp.StatusCode, resp.Header, nil, &DeliveryError{Kind: KindServer, Status: resp.StatusCode,
			Diagnostics: fmt.Sprintf("the answer is larger than %d bytes", limit)}
	}
	return resp.StatusCode, resp.Header, body, nil
}

// linkError strips the URL from a transport error (it is in every line
// already) and names certificate problems.
func linkError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var cerr *tls.CertificateVerificationError
	if errors.As(err, &cerr) {
		return fmt.Errorf("the upstream's certificate is not trusted (set upstream.ca_file to its CA): %w", err)
	}
	return err
}

func (c *Client) clock() time.Time {
	if c.now == nil {
		return time.Now()
	}
	return c.now()
}

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}
