package synctest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Fault is one way the proxy breaks a request.
type Fault string

// Faults the proxy injects.
const (
	// Before the upstream sees the request.
	FaultReset      Fault = "reset"       // TCP reset instead of an answer
	Fault503        Fault = "503"         // 503 with an OperationOutcome
	Fault502HTML    Fault = "502-html"    // 502 with an HTML page (a proxy's)
	Fault429        Fault = "429"         // 429 with Retry-After
	FaultLie        Fault = "lie"         // 200 with an OperationOutcome body
	FaultCaptive400 Fault = "captive-400" // 400 with an HTML page, as a captive portal
	// After the upstream stored the document: the answer is lost or wrong.
	FaultDropAfter Fault = "drop-after" // the connection is reset instead of the answer
	FaultTruncate  Fault = "truncate"   // half the answer, then the connection closes
	FaultGarbage   Fault = "garbage"    // 200 with bytes that are not JSON
	FaultMismatch  Fault = "mismatch"   // 200 with the answer altered so it proves nothing
	FaultSlow      Fault = "slow"       // no answer until the client gives up
)

// AllFaults are the faults for a mixed run, without FaultSlow (it costs the
// client's timeout in real time) and FaultCaptive400.
var AllFaults = []Fault{FaultReset, Fault503, Fault502HTML, Fault429, FaultLie, FaultDropAfter, FaultTruncate, FaultGarbage, FaultMismatch}

// Faults configures the proxy.
type Faults struct {
	// Rate is the share of requests that fail, 0 to 1.
	Rate float64
	// Kinds are the faults drawn from, evenly; empty means AllFaults.
	Kinds []Fault
	// Latency adds up to this much delay to every request.
	Latency time.Duration
	// RetryAfter is the seconds a 429 asks for.
	RetryAfter int
	// Only restricts faults to requests of this method (e.g. "PUT"); empty is all.
	Only string
}

// Proxy is an HTTP proxy on loopback that forwards to one upstream and
// breaks a share of the requests on the way.
type Proxy struct {
	// URL is the proxy's address with the upstream URL's path.
	URL string

	target string
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport

	mu       sync.Mutex
	faults   Faults
	rnd      *rand.Rand
	down     bool
	counts   map[Fault]int
	requests int
	wire     int64
}

// NewProxy starts a proxy to base (a URL with scheme, host and path).
func NewProxy(base string, f Faults, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		ln.Close()
		return nil, fmt.Errorf("proxy target %q is not a URL", base)
	}
	p := &Proxy{
		URL:    "http://" + ln.Addr().String() + u.Path,
		target: u.Scheme + "://" + u.Host,
		ln:     &countingListener{Listener: ln},
		tr:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		faults: f,
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		counts: map[Fault]int{},
	}
	p.ln.(*countingListener).p = p
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(p.ln)
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.srv.Close()
	p.tr.CloseIdleConnections()
}

// SetFaults changes the faults from the next request on.
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// SetDown makes the link dead (every connection is reset at once) or alive.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

// Counts says how often each fault was injected, and how many requests came.
func (p *Proxy) Counts() (map[Fault]int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Fault]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out, p.requests
}

// CountsString is Counts for a log line.
func (p *Proxy) CountsString() string {
	c, n := p.Counts()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	s := fmt.Sprintf("%d requests", n)
	for _, k := range keys {
		s += fmt.Sprintf(", %s %d", k, c[Fault(k)])
	}
	return s
}

// WireBytes is the bytes that crossed the client side of the proxy, both ways.
func (p *Proxy) WireBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wire
}

func (p *Proxy) draw() (Fault, time.Duration, Faults, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	f := p.faults
	var lat time.Duration
	if f.Latency > 0 {
		lat = time.Duration(p.rnd.Int64N(int64(f.Latency)))
	}
	if p.down {
		p.counts[FaultReset]++
		return FaultReset, 0, f, true
	}
	if f.Rate <= 0 || p.rnd.Float64() >= f.Rate {
		return "", lat, f, false
	}
	kinds := f.Kinds
	if len(kinds) == 0 {
		kinds = AllFaults
	}
	k := kinds[p.rnd.IntN(len(kinds))]
	return k, lat, f, true
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fault, lat, f, hit := p.draw()
	if hit && f.Only != "" && r.Method != f.Only && fault != FaultReset {
		hit = false
	}
	if hit {
		p.mu.Lock()
		p.counts[fault]++
		p.mu.Unlock()
	}
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
			return
		}
	}
	if hit {
		switch fault {
		case FaultReset:
			reset(w)
			return
		case Fault503:
			writeOO(w, http.StatusServiceUnavailable, "transient", "upstream busy (injected)")
			return
		case Fault502HTML:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
			return
		case Fault429:
			w.Header().Set("Retry-After", strconv.Itoa(max(f.RetryAfter, 1)))
			writeOO(w, http.StatusTooManyRequests, "throttled", "slow down (injected)")
			return
		case FaultLie:
			writeOO(w, http.StatusOK, "exception", "internal error, but the status says 200 (injected)")
			return
		case FaultCaptive400:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, "<html><body>Please log in to the Wi-Fi</body></html>")
			return
		}
	}
	status, h, body, err := p.forward(r)
	if err != nil {
		reset(w)
		return
	}
	if hit {
		switch fault {
		case FaultDropAfter:
			reset(w)
			return
		case FaultTruncate:
			w.Header().Set("Content-Type", h.Get("Content-Type"))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)+10))
			w.WriteHeader(status)
			w.Write(body[:len(body)/2])
			reset(w)
			return
		case FaultGarbage:
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "\x00\x01garbage{{{")
			return
		case FaultMismatch:
			body = bytes.ReplaceAll(decompressIfGzip(h, body), []byte(`"versionId"`), []byte(`"versionXd"`))
			h.Del("Content-Encoding")
		case FaultSlow:
			<-r.Context().Done()
			return
		}
	}
	for k, vs := range h {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(status)
	w.Write(body)
}

// forward sends the request on to the upstream and reads its whole answer.
func (p *Proxy) forward(r *http.Request) (int, http.Header, []byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header = r.Header.Clone()
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func decompressIfGzip(h http.Header, b []byte) []byte {
	if h.Get("Content-Encoding") != "gzip" {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return b
	}
	return out
}

// reset closes the client's connection with a TCP RST, no answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("synctest: cannot hijack")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	buf.Flush()
	var tc *net.TCPConn
	switch c := conn.(type) {
	case *net.TCPConn:
		tc = c
	case *countedConn:
		tc, _ = c.Conn.(*net.TCPConn)
	}
	if tc != nil {
		tc.SetLinger(0)
	}
	conn.Close()
}

func writeOO(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":%q,"diagnostics":%q}]}`, code, msg)
}

type countingListener struct {
	net.Listener
	p *Proxy
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, p: l.p}, nil
}

type countedConn struct {
	net.Conn
	p *Proxy
}

func (c *countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.p.mu.Lock()
	c.p.wire += int64(n)
	c.p.mu.Unlock()
	return n, err
}

func (c *countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.p.mu.Lock()
	c.p.wire += int64(n)
	c.p.mu.Unlock()
	return n, err
}
