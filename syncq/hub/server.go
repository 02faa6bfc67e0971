package hub

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Defaults of the server.
const (
	DefaultAddr         = ":8090"
	DefaultBasePath     = "/fhir"
	DefaultMaxBodyBytes = 16 << 20 // after decompression
	DefaultMaxBatch     = 200
	DefaultSearchCount  = 50
	MaxSearchCount      = 500
	fhirJSON            = "application/fhir+json"
)

// Server is the hub's HTTP side. Open listens at once (a busy port fails
// Open) and serves in the background; Close shuts down gracefully.
type Server struct {
	// Addr is the listen address; ":0" picks a free port.
	Addr string
	// BasePath is the FHIR base path; the base URL is scheme://host + BasePath.
	BasePath string
	Store    *Store
	// Logger receives one line per write: node, Bundle id, version, status.
	Logger *slog.Logger
	// TLSConfig, when set, serves HTTPS; with ClientCAs set, a node may
	// authenticate with a certificate whose CommonName is its name.
	TLSConfig *tls.Config
	// MaxBodyBytes caps a request body after decompression; MaxBatch the
	// entries of a batch.
	MaxBodyBytes int64
	MaxBatch     int
	// AllowAnonymous accepts requests without credentials, as node
	// "anonymous": for a trainer's demonstration only.
	AllowAnonymous bool
	// Exports takes USB export files at POST [base]/$export-file; nil
	// answers 404. MaxExportBytes caps one file.
	Exports        *Exports
	MaxExportBytes int64

	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
}

// NewServer returns a server for st with default settings.
func NewServer(st *Store) *Server {
	return &Server{
		Addr:         DefaultAddr,
		BasePath:     DefaultBasePath,
		Store:        st,
		Logger:       slog.New(slog.DiscardHandler),
		MaxBodyBytes: DefaultMaxBodyBytes,
		MaxBatch:     DefaultMaxBatch,
	}
}

// Open listens and starts serving.
func (s *Server) Open(ctx context.Context) error {
	s.Logger = s.Logger.With(edge.LogKeySubsystem, "hub")
	s.BasePath = "/" + strings.Trim(s.BasePath, "/")
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("hub: listen on %s: %w", s.Addr, err)
	}
	if s.TLSConfig != nil {
		ln = tls.NewListener(ln, s.TLSConfig)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("hub stopped serving", "error", err)
		}
	}()
	return nil
}

// Close stops taking requests and waits for those in flight.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return err
}

// URL is the FHIR base URL the server listens on.
func (s *Server) URL() string {
	scheme := "http"
	if s.TLSConfig != nil {
		scheme = "https"
	}
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(addr.Port)) + s.BasePath
}

// Handler is the hub's routes, for tests that serve it themselves.
func (s *Server) Handler() http.Handler {
	base := "/" + strings.Trim(s.BasePath, "/")
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+base+"/metadata", s.metadata)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.Store.ArrivalCount(r.Context()); err != nil {
			http.Error(w, "database not answering", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc(base, s.authenticated(s.route))
	mux.HandleFunc(base+"/", s.authenticated(s.route))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.outcome(w, r, http.StatusNotFound, issue("not-found", "", "nothing here; the FHIR base is %s", base))
	})
	return mux
}

type nodeKey struct{}

// authenticated resolves the node from a client certificate or a bearer
// token, or answers 401.
func (s *Server) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		node, err := s.node(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="healthpost hub"`)
			s.outcome(w, r, http.StatusUnauthorized, issue("login", "", "this hub needs a node token ('healthpost hub token add NODE') or a client certificate"))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), nodeKey{}, node)))
	}
}

func (s *Server) node(r *http.Request) (string, error) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		cn := r.TLS.PeerCertificates[0].Subject.CommonName
		if ok, err := s.Store.NodeActive(r.Context(), cn); err == nil && ok {
			return cn, nil
		}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return s.Store.Authenticate(r.Context(), strings.TrimSpace(tok))
	}
	if s.AllowAnonymous {
		return "anonymous", nil
	}
	return "", ErrUnauthorized
}

func nodeOf(r *http.Request) string { n, _ := r.Context().Value(nodeKey{}).(string); return n }

// route dispatches the FHIR interactions under the base path.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/"+strings.Trim(s.BasePath, "/")), "/")
	parts := strings.Split(rest, "/")
	if rest == "" {
		parts = nil
	}
	switch {
	case len(parts) == 0:
		if r.Method == http.MethodPost {
			s.batch(w, r)
			return
		}
		s.methodNotAllowed(w, r, "POST")
	case len(parts) == 1 && parts[0] == "$export-file":
		s.exportFile(w, r)
	case parts[0] != "Bundle":
		s.outcome(w, r, http.StatusNotFound, issue("not-supported", "", "this hub stores Bundle resources only, not %q", parts[0]))
	case len(parts) == 1:
		switch r.Method {
		case http.MethodGet:
			s.search(w, r)
		case http.MethodPost:
			s.create(w, r)
		case http.MethodPut:
			s.conditionalUpdate(w, r)
		default:
			s.methodNotAllowed(w, r, "GET, POST, PUT")
		}
	case len(parts) == 2:
		switch r.Method {
		case http.MethodGet:
			s.read(w, r, parts[1], 0)
		case http.MethodPut:
			s.update(w, r, parts[1])
		default:
			s.methodNotAllowed(w, r, "GET, PUT")
		}
	case len(parts) == 4 && parts[2] == "_history":
		v, err := strconv.Atoi(parts[3])
		if err != nil || v < 1 {
			s.outcome(w, r, http.StatusNotFound, issue("not-found", "", "version %q is not a version number", parts[3]))
			return
		}
		if r.Method != http.MethodGet {
			s.methodNotAllowed(w, r, "GET")
			return
		}
		s.read(w, r, parts[1], v)
	default:
		s.outcome(w, r, http.StatusNotFound, issue("not-found", "", "unknown path %s", r.URL.Path))
	}
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	s.outcome(w, r, http.StatusMethodNotAllowed, issue("not-supported", "", "%s is not supported here; use %s", r.Method, allow))
}

// body reads a request body: FHIR JSON, identity or gzip, within the cap.
func (s *Server) body(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != fhirJSON && mt != "application/json") {
		s.outcome(w, r, http.StatusUnsupportedMediaType, issue("not-supported", "", "send application/fhir+json"))
		return nil, false
	}
	limit := s.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	var rd io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			s.outcome(w, r, http.StatusBadRequest, issue("structure", "", "the body is not gzip: %v", err))
			return nil, false
		}
		rd = zr
	default:
		s.outcome(w, r, http.StatusUnsupportedMediaType, issue("not-supported", "", "Content-Encoding %q is not supported; use gzip", enc))
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(rd, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || int64(len(b)) > limit:
		s.outcome(w, r, http.StatusRequestEntityTooLarge, issue("too-costly", "", "the body is larger than %d bytes", limit))
		return nil, false
	case err != nil:
		s.outcome(w, r, http.StatusBadRequest, issue("structure", "", "cannot read the body: %v", err))
		return nil, false
	}
	return b, true
}

// parse checks a Bundle and answers 400 (not a Bundle at all) or 422 (a
// Bundle that breaks the rules) when it fails.
func (s *Server) parse(w http.ResponseWriter, r *http.Request, body []byte) (*Resource, bool) {
	res, issues := ParseBundle(body)
	if len(issues) > 0 {
		status := http.StatusUnprocessableEntity
		if issues[0].Code == "structure" && len(issues) == 1 {
			status = http.StatusBadRequest
		}
		s.outcome(w, r, status, issues...)
		return nil, false
	}
	return res, true
}

// update is PUT Bundle/{id}: create or new version by id.
func (s *Server) update(w http.ResponseWriter, r *http.Request, id string) {
	if !idRe.MatchString(id) {
		s.outcome(w, r, http.StatusBadRequest, issue("value", "", "%q is not a FHIR id", id))
		return
	}
	body, ok := s.body(w, r)
	if !ok {
		return
	}
	res, ok := s.parse(w, r, body)
	if !ok {
		return
	}
	if res.ID != id {
		s.outcome(w, r, http.StatusBadRequest, issue("value", "Bundle.id", "Bundle.id must be %q, the id in the URL", id))
		return
	}
	s.store(w, r, Write{How: WriteByID, ID: id, Resource: res})
}

// create is POST Bundle. The hub is idempotent on the identifier, so a
// create is always conditional: on If-None-Exist's identifier when given,
// else on the body's.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var match Token
	if h := r.Header.Get("If-None-Exist"); h != "" {
		q, err := url.ParseQuery(strings.TrimPrefix(h, "?"))
		if err != nil || len(q) != 1 || len(q["identifier"]) != 1 {
			s.outcome(w, r, http.StatusBadRequest, issue("not-supported", "", "If-None-Exist supports identifier=system|value only"))
			return
		}
		match = ParseToken(q.Get("identifier"))
	}
	body, ok := s.body(w, r)
	if !ok {
		return
	}
	res, ok := s.parse(w, r, body)
	if !ok {
		return
	}
	s.store(w, r, Write{How: WriteIfNoneExist, ID: res.ID, Match: match, Resource: res})
}

// conditionalUpdate is PUT Bundle?identifier=system|value.
func (s *Server) conditionalUpdate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if len(q) != 1 || len(q["identifier"]) != 1 {
		s.outcome(w, r, http.StatusBadRequest, issue("not-supported", "", "a conditional update needs ?identifier=system|value and nothing else"))
		return
	}
	body, ok := s.body(w, r)
	if !ok {
		return
	}
	res, ok := s.parse(w, r, body)
	if !ok {
		return
	}
	s.store(w, r, Write{How: WriteByIdentifier, ID: res.ID, Match: ParseToken(q.Get("identifier")), Resource: res})
}

func (s *Server) store(w http.ResponseWriter, r *http.Request, wr Write) {
	node := nodeOf(r)
	st, err := s.Store.Put(r.Context(), node, wr)
	if err != nil {
		status, is := storeError(err)
		if status >= 500 {
			s.Logger.Error("store bundle", "node", node, "error", err)
		}
		s.outcome(w, r, status, is)
		return
	}
	status := http.StatusOK
	if st.Created {
		status = http.StatusCreated
	}
	s.Logger.Debug("bundle written", "node", node, "bundle", st.ID, "version", st.Version, "status", status)
	s.resource(w, r, status, st, true)
}

// storeError maps a store error to a status and an issue.
func storeError(err error) (int, Issue) {
	switch {
	case errors.Is(err, ErrIdentifierTaken), errors.Is(err, ErrIdentifierChanged):
		return http.StatusConflict, issue("conflict", "Bundle.identifier", "%v", err)
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, issue("forbidden", "", "%v", err)
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, issue("not-found", "", "%v", err)
	}
	return http.StatusInternalServerError, issue("exception", "", "the hub could not store the Bundle; try again")
}

// read is GET Bundle/{id} and GET Bundle/{id}/_history/{v}. A node reads
// only the Bundles it sent.
func (s *Server) read(w http.ResponseWriter, r *http.Request, id string, v int) {
	st, err := s.Store.Read(r.Context(), id, v)
	if err == nil {
		var owner string
		owner, err = s.Store.owner(r.Context(), id)
		if err == nil && owner != nodeOf(r) {
			err = ErrNotFound
		}
	}
	if errors.Is(err, ErrNotFound) {
		s.outcome(w, r, http.StatusNotFound, issue("not-found", "", "Bundle/%s is not here", id))
		return
	}
	if err != nil {
		s.Logger.Error("read bundle", "bundle", id, "error", err)
		s.outcome(w, r, http.StatusInternalServerError, issue("exception", "", "the hub could not read the Bundle"))
		return
	}
	s.resource(w, r, http.StatusOK, st, false)
}

// search is GET Bundle?identifier=&patient=&_count=&_offset=, over the
// requesting node's Bundles.
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := Search{Count: DefaultSearchCount, Node: nodeOf(r)}
	for k, vs := range r.URL.Query() {
		v := vs[0]
		switch k {
		case "identifier":
			t := ParseToken(v)
			q.Identifier = &t
		case "patient", "composition.patient", "composition.subject":
			q.Patient = v
		case "_count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.outcome(w, r, http.StatusBadRequest, issue("value", "", "_count must be a whole number"))
				return
			}
			q.Count = min(n, MaxSearchCount)
		case "_offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.outcome(w, r, http.StatusBadRequest, issue("value", "", "_offset must be a whole number"))
				return
			}
			q.Offset = n
		case "_format":
		default:
			s.outcome(w, r, http.StatusBadRequest, issue("not-supported", "", "search parameter %q is not supported; use identifier or patient", k))
			return
		}
	}
	found, total, err := s.Store.Search(r.Context(), q)
	if err != nil {
		s.Logger.Error("search bundles", "error", err)
		s.outcome(w, r, http.StatusInternalServerError, issue("exception", "", "the hub could not search"))
		return
	}
	base := s.baseURL(r)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"resourceType":"Bundle","type":"searchset","total":%d,"link":[{"relation":"self","url":%q}`,
		total, base+"/Bundle?"+r.URL.RawQuery)
	if q.Offset+len(found) < total {
		nq := r.URL.Query()
		nq.Set("_offset", strconv.Itoa(q.Offset+len(found)))
		fmt.Fprintf(&b, `,{"relation":"next","url":%q}`, base+"/Bundle?"+nq.Encode())
	}
	b.WriteString(`],"entry":[`)
	for i, st := range found {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"fullUrl":%q,"resource":`, base+"/Bundle/"+st.ID)
		b.Write(st.Body)
		b.WriteString(`,"search":{"mode":"match"}}`)
	}
	b.WriteString(`]}`)
	s.send(w, r, http.StatusOK, b.Bytes())
}

// batch is POST [base] with a batch Bundle of Bundle writes; each entry
// succeeds or fails on its own, all in one commit.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	body, ok := s.body(w, r)
	if !ok {
		return
	}
	var in struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
			Request  struct {
				Method      string `json:"method"`
				URL         string `json:"url"`
				IfNoneExist string `json:"ifNoneExist"`
			} `json:"request"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ResourceType != "Bundle" {
		s.outcome(w, r, http.StatusBadRequest, issue("structure", "", "POST to the base takes a batch Bundle"))
		return
	}
	if in.Type != "batch" {
		s.outcome(w, r, http.StatusBadRequest, issue("not-supported", "Bundle.type", "only batch bundles are processed here, not %q", in.Type))
		return
	}
	limit := s.MaxBatch
	if limit <= 0 {
		limit = DefaultMaxBatch
	}
	if len(in.Entry) > limit {
		s.outcome(w, r, http.StatusRequestEntityTooLarge, issue("too-costly", "", "a batch may hold at most %d entries", limit))
		return
	}
	writes := make([]Write, len(in.Entry))
	refused := make([][]Issue, len(in.Entry))
	status := make([]int, len(in.Entry))
	for i, e := range in.Entry {
		wr, st, issues := batchWrite(e.Request.Method, e.Request.URL, e.Request.IfNoneExist, e.Resource)
		writes[i], status[i], refused[i] = wr, st, issues
	}
	node := nodeOf(r)
	stored, errs, err := s.Store.PutBatch(r.Context(), node, writes)
	if err != nil {
		s.Logger.Error("store batch", "node", node, "error", err)
		s.outcome(w, r, http.StatusInternalServerError, issue("exception", "", "the hub could not store the batch; try again"))
		return
	}
	base := s.baseURL(r)
	minimal := strings.Contains(r.Header.Get("Prefer"), "return=minimal")
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Bundle","type":"batch-response","entry":[`)
	for i := range in.Entry {
		if i > 0 {
			b.WriteByte(',')
		}
		if refused[i] == nil && errs[i] != nil {
			st, is := storeError(errs[i])
			status[i], refused[i] = st, []Issue{is}
		}
		if refused[i] != nil {
			oo, _ := json.Marshal(outcomeOf(refused[i]))
			fmt.Fprintf(&b, `{"response":{"status":%q,"outcome":%s}}`, fmt.Sprintf("%d %s", status[i], http.StatusText(status[i])), oo)
			continue
		}
		st := stored[i]
		code := http.StatusOK
		if st.Created {
			code = http.StatusCreated
		}
		b.WriteString(`{`)
		if !minimal {
			fmt.Fprintf(&b, `"fullUrl":%q,"resource":`, base+"/Bundle/"+st.ID)
			b.Write(st.Body)
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"response":{"status":%q,"location":%q,"etag":%q,"lastModified":%q}}`,
			fmt.Sprintf("%d %s", code, http.StatusText(code)), base+"/Bundle/"+st.ID+"/_history/"+strconv.Itoa(st.Version),
			`W/"`+strconv.Itoa(st.Version)+`"`, st.LastUpdated.UTC().Format(time.RFC3339))
	}
	b.WriteString(`]}`)
	s.Logger.Debug("batch written", "node", node, "entries", len(in.Entry))
	s.send(w, r, http.StatusOK, b.Bytes())
}

// batchWrite turns one batch entry into a write, or the status and issues
// that refuse it.
func batchWrite(method, target, ifNoneExist string, raw json.RawMessage) (Write, int, []Issue) {
	res, issues := ParseBundle(raw)
	if len(issues) > 0 {
		return Write{}, http.StatusUnprocessableEntity, issues
	}
	path, query, _ := strings.Cut(target, "?")
	path = strings.Trim(path, "/")
	switch {
	case method == http.MethodPut && strings.HasPrefix(path, "Bundle/") && query == "":
		id := strings.TrimPrefix(path, "Bundle/")
		if res.ID != id {
			return Write{}, http.StatusBadRequest, []Issue{issue("value", "Bundle.id", "Bundle.id must be %q, the id in request.url", id)}
		}
		return Write{How: WriteByID, ID: id, Resource: res}, 0, nil
	case method == http.MethodPut && path == "Bundle" && query != "":
		q, err := url.ParseQuery(query)
		if err != nil || len(q) != 1 || len(q["identifier"]) != 1 {
			return Write{}, http.StatusBadRequest, []Issue{issue("not-supported", "", "a conditional update needs ?identifier=system|value and nothing else")}
		}
		return Write{How: WriteByIdentifier, ID: res.ID, Match: ParseToken(q.Get("identifier")), Resource: res}, 0, nil
	case method == http.MethodPost && path == "Bundle" && query == "":
		var match Token
		if ifNoneExist != "" {
			q, err := url.ParseQuery(strings.TrimPrefix(ifNoneExist, "?"))
			if err != nil || len(q) != 1 || len(q["identifier"]) != 1 {
				return Write{}, http.StatusBadRequest, []Issue{issue("not-supported", "", "ifNoneExist supports identifier=system|value only")}
			}
			match = ParseToken(q.Get("identifier"))
		}
		return Write{How: WriteIfNoneExist, ID: res.ID, Match: match, Resource: res}, 0, nil
	}
	return Write{}, http.StatusBadRequest, []Issue{issue("not-supported", "", "batch entries may PUT Bundle/{id}, PUT Bundle?identifier= or POST Bundle, not %s %s", method, target)}
}

// metadata is the CapabilityStatement: what the probe of a node reads.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2025-01-01",
		"kind":         "instance",
		"software":     map[string]any{"name": "healthpost hub", "version": edge.Version()},
		"implementation": map[string]any{
			"description": "healthpost district hub: FHIR R4 document Bundles from health centre nodes",
			"url":         s.baseURL(r),
		},
		"fhirVersion": "4.0.1",
		"format":      []string{fhirJSON},
		"rest": []any{map[string]any{
			"mode": "server",
			"security": map[string]any{
				"description": "Bearer token per node ('healthpost hub token add NODE'), or a client certificate whose CommonName is the node's name",
			},
			"resource": []any{map[string]any{
				"type":              "Bundle",
				"versioning":        "versioned",
				"readHistory":       false,
				"updateCreate":      true,
				"conditionalCreate": true,
				"conditionalUpdate": true,
				"interaction": []any{
					map[string]string{"code": "read"}, map[string]string{"code": "vread"},
					map[string]string{"code": "update"}, map[string]string{"code": "create"},
					map[string]string{"code": "search-type"},
				},
				"searchParam": []any{
					map[string]string{"name": "identifier", "type": "token"},
					map[string]string{"name": "patient", "type": "string", "documentation": "the document's subject: Patient/id, id, or an identifier system|value or value"},
				},
			}},
			"interaction": []any{map[string]string{"code": "batch"}},
		}},
	}
	b, _ := json.Marshal(cs)
	s.send(w, r, http.StatusOK, b)
}

// resource answers with one stored version, its ETag and Location, and the
// body unless the client asked for return=minimal.
func (s *Server) resource(w http.ResponseWriter, r *http.Request, status int, st Stored, wrote bool) {
	h := w.Header()
	h.Set("ETag", `W/"`+strconv.Itoa(st.Version)+`"`)
	h.Set("Last-Modified", st.LastUpdated.UTC().Format(http.TimeFormat))
	if wrote {
		h.Set("Location", s.baseURL(r)+"/Bundle/"+st.ID+"/_history/"+strconv.Itoa(st.Version))
		if strings.Contains(r.Header.Get("Prefer"), "return=minimal") {
			w.WriteHeader(status)
			return
		}
	}
	s.send(w, r, status, st.Body)
}

// outcomeOf builds an OperationOutcome of issues.
func outcomeOf(issues []Issue) map[string]any {
	return map[string]any{"resourceType": "OperationOutcome", "issue": issues}
}

// outcome answers with an OperationOutcome: every rejection is one.
func (s *Server) outcome(w http.ResponseWriter, r *http.Request, status int, issues ...Issue) {
	b, _ := json.Marshal(outcomeOf(issues))
	s.send(w, r, status, b)
}

// send writes a FHIR JSON body, gzip-compressed when the client takes it
// and it is worth it.
func (s *Server) send(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", fhirJSON+"; charset=utf-8")
	h.Add("Vary", "Accept-Encoding")
	if len(body) > 1024 && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		zw := gzip.NewWriter(w)
		zw.Write(body)
		zw.Close()
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && !strings.Contains(strings.ReplaceAll(params, " ", ""), "q=0") {
			return true
		}
	}
	return false
}

// baseURL is the FHIR base as the client reached it.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/" + strings.Trim(s.BasePath, "/")
}
