package syncq_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/edge/edgetest"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/exportfile"
	"github.com/healthpost/healthpost/syncq/hub"
	"github.com/healthpost/healthpost/syncq/synctest"
)

// exportHub is a hub on loopback that takes export files, with node-test's
// token and signing key registered.
type exportHub struct {
	Store   *hub.Store
	Server  *hub.Server
	Exports *hub.Exports
	Keys    *hub.Keys
	URL     string
	Token   string
}

// MustOpenExportHub starts a hub on 127.0.0.1:0 that takes export files
// signed by nodeKey (as node-test).
func MustOpenExportHub(tb testing.TB, nodeKey ed25519.PrivateKey) *exportHub {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	st := hub.NewStore(filepath.Join(dir, "hub.db"))
	if err := st.Open(ctx); err != nil {
		tb.Fatal(err)
	}
	tok, err := st.AddNode(ctx, "node-test")
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.SetSigningKey(ctx, "node-test", nodeKey.Public().(ed25519.PublicKey)); err != nil {
		tb.Fatal(err)
	}
	keys, err := hub.LoadOrCreateKeys(dir)
	if err != nil {
		tb.Fatal(err)
	}
	ex := &hub.Exports{Store: st, Keys: keys}
	srv := hub.NewServer(st)
	srv.Addr, srv.Exports = "127.0.0.1:0", ex
	if err := srv.Open(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		srv.Close(context.Background())
		st.Close()
	})
	return &exportHub{Store: st, Server: srv, Exports: ex, Keys: keys, URL: srv.URL(), Token: tok}
}

// Client is an upstream client of the hub, as `healthpost push` makes one.
func (h *exportHub) Client(tb testing.TB) *syncq.Client {
	tb.Helper()
	c, err := syncq.NewClient(h.URL, nil)
	if err != nil {
		tb.Fatal(err)
	}
	c.Token = h.Token
	return c
}

// ReceiptKey is the hub's receipt key, as a node configures it.
func (h *exportHub) ReceiptKey() ed25519.PublicKey {
	return h.Keys.Signing.Public().(ed25519.PublicKey)
}

func mustNodeKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// MustExport exports s's outbox into a new directory and reads the file.
func MustExport(tb testing.TB, s *edge.Store, h *exportHub, key ed25519.PrivateKey, wait time.Duration) (*syncq.ExportResult, []byte) {
	tb.Helper()
	res, err := syncq.Export(edgetest.Clerk(), s, synctest.Mapper(), syncq.ExportOptions{Dir: tb.TempDir(), HubKey: h.Keys.ExportKey(), Key: key, NodeID: "node-test", Wait: wait})
	if err != nil {
		tb.Fatalf("export: %v", err)
	}
	data, err := os.ReadFile(res.Path)
	if err != nil {
		tb.Fatal(err)
	}
	return res, data
}

// stateCounts counts the node's outbox rows by state.
func stateCounts(tb testing.TB, s *edge.Store) map[string]int64 {
	tb.Helper()
	st, err := s.OutboxStats(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int64{}
	for _, c := range st.Counts {
		out[c.State] += c.Count
	}
	return out
}

func mustArrivals(tb testing.TB, h *hub.Store) int64 {
	tb.Helper()
	n, err := h.ArrivalCount(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestExport_RoundTripThroughTheHub(t *testing.T) {
	t.Parallel()
	ctx := edgetest.Clerk()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	docs := MustSeed(t, s, 20, 200)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)

	// Ensure export writes every document to one file and marks each exported, awaiting its receipt.
	res, data := MustExport(t, s, h, key, 0)
	if res.Documents != docs || res.Again != 0 || res.Patients != 20 {
		t.Fatalf("exported %d documents (%d again) of %d patients, want %d of 20", res.Documents, res.Again, res.Patients, docs)
	}
	if got := stateCounts(t, s); got[edge.OutboxExported] != int64(docs) || got[edge.OutboxPending] != 0 {
		t.Fatalf("after export the outbox is %v, want %d exported", got, docs)
	}
	if entries, _ := os.ReadDir(filepath.Dir(res.Path)); len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), exportfile.Ext) {
		t.Fatalf("the export directory holds %v, want the one %s file", entries, exportfile.Ext)
	}
	if wait := time.Until(res.WaitUntil); wait < edge.DefaultExportWait-time.Minute || wait > edge.DefaultExportWait {
		t.Fatalf("exported rows wait until %v, want a week from now", res.WaitUntil)
	}
	// Ensure the online engine leaves exported rows alone while they wait.
	e := NewTestEngine(t, s, h.URL, h.Token)
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := mustArrivals(t, h.Store); n != 0 {
		t.Fatalf("the online engine sent %d exported documents before their wait ended", n)
	}

	// Ensure the district office's push stores every document and brings back a receipt that answers this file.
	signed, r, err := h.Client(t).PushExport(context.Background(), data, h.ReceiptKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Documents) != docs || r.Node != "node-test" {
		t.Fatalf("receipt of %d documents from node %q, want %d from node-test", len(r.Documents), r.Node, docs)
	}
	if n := mustArrivals(t, h.Store); n != int64(docs) {
		t.Fatalf("the hub stored %d versions, want %d", n, docs)
	}

	// Ensure importing the receipt marks every document delivered with the hub's id and version, as online delivery would.
	opts := syncq.ImportOptions{HubKey: h.ReceiptKey(), NodeKey: key.Public().(ed25519.PublicKey), Upstream: h.URL}
	ir, err := syncq.ImportReceipt(ctx, s, signed, opts)
	if err != nil {
		t.Fatal(err)
	}
	if ir.Confirmed != docs || ir.Already != 0 || ir.Refused != 0 {
		t.Fatalf("import = %+v, want %d confirmed", ir, docs)
	}
	MustVerifyExactlyOnce(t, path, h.Store)
	report, p, err := syncq.BuildReceiptReport(ctx, s, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), time.Now(), key)
	if err != nil || report == nil || len(p.Receipts) != docs || p.Receipts[0].Upstream != h.URL {
		t.Fatalf("sync receipts lists %d receipts (err %v), want %d from %s", len(p.Receipts), err, docs, h.URL)
	}
	audit := edgetest.MustRawDB(t, path)
	if got := edgetest.MustCount(t, audit, `SELECT count(*) FROM audit_log WHERE action = ?`, edge.ActionOutboxExport); got != docs {
		t.Fatalf("%d export audit entries, want one per document (%d)", got, docs)
	}

	// Ensure replaying the file, by upload and from the inbox, and the receipt, stores and changes nothing twice.
	again, r2, err := h.Client(t).PushExport(context.Background(), data, h.ReceiptKey())
	if err != nil {
		t.Fatal(err)
	}
	inbox := t.TempDir()
	dropped := filepath.Join(inbox, filepath.Base(res.Path))
	if err := os.WriteFile(dropped, data, 0o644); err != nil {
		t.Fatal(err)
	}
	in := &hub.Inbox{Dir: inbox, Exports: h.Exports}
	sc, err := in.Scan(context.Background())
	if err != nil || len(sc.Taken) != 1 {
		t.Fatalf("inbox scan took %v (err %v), want the dropped file", sc, err)
	}
	fromInbox, err := os.ReadFile(strings.TrimSuffix(dropped, exportfile.Ext) + exportfile.ReceiptExt)
	if err != nil {
		t.Fatalf("no receipt beside the file in the inbox: %v", err)
	}
	if sc, _ := in.Scan(context.Background()); len(sc.Taken)+len(sc.Rejected) != 0 {
		t.Fatalf("a second scan took the file again: %+v", sc)
	}
	if n := mustArrivals(t, h.Store); n != int64(docs) {
		t.Fatalf("after replays the hub stored %d versions, want still %d", n, docs)
	}
	for i, d := range r2.Documents {
		if d.RemoteID != r.Documents[i].RemoteID || d.RemoteVersion != r.Documents[i].RemoteVersion {
			t.Fatalf("replayed receipt names %s v%s for document %d, first receipt %s v%s", d.RemoteID, d.RemoteVersion, i,
				r.Documents[i].RemoteID, r.Documents[i].RemoteVersion)
		}
	}
	for _, b := range [][]byte{again, fromInbox, signed} {
		ir, err := syncq.ImportReceipt(ctx, s, b, opts)
		if err != nil || ir.Confirmed != 0 || ir.Already != docs {
			t.Fatalf("import of a replayed receipt = %+v (err %v), want all %d confirmed before", ir, err, docs)
		}
	}
	if got := edgetest.MustCount(t, audit, `SELECT count(*) FROM audit_log WHERE action = ?`, edge.ActionOutboxDeliver); got != docs {
		t.Fatalf("%d delivery audit entries, want one per document (%d)", got, docs)
	}
	MustVerifyExactlyOnce(t, path, h.Store)
}

func TestExport_CorruptFileRefusedWhole(t *testing.T) {
	t.Parallel()
	s := edgetest.MustOpenStore(t)
	MustSeed(t, s, 5, 20)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)
	_, valid := MustExport(t, s, h, key, 0)

	flipped := bytes.Clone(valid)
	flipped[len(flipped)*2/3] ^= 0x01
	stranger := mustNodeKey(t)
	byStranger, _ := MustExportAgain(t, s, h.Keys.ExportKey(), stranger)
	otherHub, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	toOtherHub, _ := MustExportAgain(t, s, otherHub.Recipient().String(), key)

	cases := []struct {
		name   string
		data   []byte
		status int
		says   string
	}{
		{"FlippedByte", flipped, http.StatusBadRequest, "changed after it was written"},
		{"Truncated", valid[:len(valid)-100], http.StatusBadRequest, "cut short"},
		{"SignedByUnknownNode", byStranger, http.StatusForbidden, "no node registered at this hub"},
		{"EncryptedToAnotherKey", toOtherHub, http.StatusBadRequest, "encrypted to another hub's key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Ensure an upload is answered with an OperationOutcome that says what is wrong, and nothing is stored.
			req, _ := http.NewRequest(http.MethodPost, h.URL+syncq.ExportFilePath, bytes.NewReader(c.data))
			req.Header.Set("Authorization", "Bearer "+h.Token)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var oo struct {
				ResourceType string
				Issue        []struct{ Code, Diagnostics string }
			}
			json.Unmarshal(body, &oo)
			if resp.StatusCode != c.status || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 ||
				!strings.Contains(oo.Issue[0].Diagnostics, c.says) || !strings.Contains(oo.Issue[0].Diagnostics, "refused whole") {
				t.Fatalf("upload answered %d %s, want %d with an OperationOutcome saying %q", resp.StatusCode, body, c.status, c.says)
			}
			// Ensure push says the same without storing anything, and writes no receipt.
			if _, _, err := h.Client(t).PushExport(context.Background(), c.data, h.ReceiptKey()); err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("push err=%v, want one saying %q", err, c.says)
			}
			// Ensure the inbox leaves a note saying why beside the file, and does not take it again until it changes.
			inbox := t.TempDir()
			file := filepath.Join(inbox, "healthpost-node-test-bad"+exportfile.Ext)
			if err := os.WriteFile(file, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			in := &hub.Inbox{Dir: inbox, Exports: h.Exports}
			if sc, err := in.Scan(context.Background()); err != nil || len(sc.Rejected) != 1 {
				t.Fatalf("inbox scan = %+v (err %v), want the file rejected", sc, err)
			}
			note, err := os.ReadFile(strings.TrimSuffix(file, exportfile.Ext) + hub.RejectedExt)
			if err != nil || !strings.Contains(string(note), c.says) {
				t.Fatalf("rejection note %q (err %v), want it to say %q", note, err, c.says)
			}
			if _, err := os.Stat(strings.TrimSuffix(file, exportfile.Ext) + exportfile.ReceiptExt); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused file got a receipt (%v)", err)
			}
			if sc, _ := in.Scan(context.Background()); len(sc.Rejected)+len(sc.Taken) != 0 {
				t.Fatalf("the unchanged refused file was taken again: %+v", sc)
			}
			if n := mustArrivals(t, h.Store); n != 0 {
				t.Fatalf("the hub stored %d versions from a refused file", n)
			}
			if _, total, err := h.Store.Search(context.Background(), hub.Search{}); err != nil || total != 0 {
				t.Fatalf("the hub holds %d Bundles (err %v) after a refused file", total, err)
			}
		})
	}
	// Ensure the good file, replaced into the inbox over the bad one, is taken.
	inbox := t.TempDir()
	file := filepath.Join(inbox, "late"+exportfile.Ext)
	os.WriteFile(file, valid[:len(valid)/2], 0o644)
	in := &hub.Inbox{Dir: inbox, Exports: h.Exports}
	if sc, _ := in.Scan(context.Background()); len(sc.Rejected) != 1 {
		t.Fatalf("half a file was not rejected: %+v", sc)
	}
	os.WriteFile(file, valid, 0o644)
	if sc, _ := in.Scan(context.Background()); len(sc.Taken) != 1 {
		t.Fatalf("the whole file, copied in after, was not taken: %+v", sc)
	}
}

// MustExportAgain writes the same outbox for another hub key or signer,
// without recording anything (a scratch copy of the database is not
// needed: Export only marks rows exported again).
func MustExportAgain(tb testing.TB, s *edge.Store, hubKey string, key ed25519.PrivateKey) ([]byte, *syncq.ExportResult) {
	tb.Helper()
	res, err := syncq.Export(edgetest.Clerk(), s, synctest.Mapper(), syncq.ExportOptions{Dir: tb.TempDir(), HubKey: hubKey, Key: key, NodeID: "node-test"})
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(res.Path)
	if err != nil {
		tb.Fatal(err)
	}
	return data, res
}

func TestExport_FullStickLeavesRowsPending(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	docs := MustSeed(t, s, 10, 100)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)
	stick := edgetest.MustMountTmpfs(t, 64<<10)
	filler := filepath.Join(stick, "photos.jpg")
	if err := os.WriteFile(filler, make([]byte, 56<<10), 0o644); err != nil {
		t.Fatal(err)
	}

	// Ensure a stick too full for the file gives a plain error, leaves no file and marks nothing.
	opts := syncq.ExportOptions{Dir: stick, HubKey: h.Keys.ExportKey(), Key: key, NodeID: "node-test"}
	_, err := syncq.Export(edgetest.Clerk(), s, synctest.Mapper(), opts)
	var ee *edge.Error
	if !errors.As(err, &ee) || ee.Code != "export_no_space" || !strings.Contains(err.Error(), "full") || !strings.Contains(err.Error(), "nothing was marked exported") {
		t.Fatalf("export to a full stick: err=%v, want export_no_space saying the stick is full", err)
	}
	if entries, _ := os.ReadDir(stick); len(entries) != 1 {
		t.Fatalf("the full stick holds %v, want only the filler", entries)
	}
	if got := stateCounts(t, s); got[edge.OutboxPending] != int64(docs) || got[edge.OutboxExported] != 0 {
		t.Fatalf("after a failed export the outbox is %v, want all %d pending", got, docs)
	}
	if got := edgetest.MustCount(t, edgetest.MustRawDB(t, path), `SELECT count(*) FROM audit_log WHERE action = ?`, edge.ActionOutboxExport); got != 0 {
		t.Fatalf("%d export audit entries after a failed export", got)
	}

	// Ensure the same export succeeds once there is room.
	os.Remove(filler)
	res, err := syncq.Export(edgetest.Clerk(), s, synctest.Mapper(), opts)
	if err != nil || res.Documents != docs {
		t.Fatalf("export after freeing the stick: %+v, %v", res, err)
	}
}

func TestExport_ExportedRowsGoOnlineAfterTheirWait(t *testing.T) {
	t.Parallel()
	ctx := edgetest.Clerk()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	docs := MustSeed(t, s, 4, 20)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)
	_, data := MustExport(t, s, h, key, time.Hour)
	// A visit after the export, of a patient whose earlier documents wait in the file.
	first, err := s.OutboxItem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	later := &edge.Encounter{PatientID: first.PatientID, Type: edge.EncounterOPD, Status: edge.EncounterFinal, Complaint: "cough"}
	if err := s.CreateEncounter(ctx, later); err != nil {
		t.Fatal(err)
	}
	docs++

	// Ensure nothing goes online while the exported rows wait, not even the later visit behind them.
	clock := synctest.NewManualClock(time.Now())
	e := NewTestEngine(t, s, h.URL, h.Token)
	e.Clock = clock
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := mustArrivals(t, h.Store); n != 0 {
		t.Fatalf("%d documents went online before the export's wait ended", n)
	}
	waits, err := s.ExportWaits(context.Background())
	if err != nil || waits.Exported != int64(docs-1) || waits.Held != 1 {
		t.Fatalf("ExportWaits = %+v (err %v), want %d exported and 1 held behind them", waits, err, docs-1)
	}

	// Ensure after the wait the link delivers every document once, in each patient's order.
	clock.Advance(time.Hour + time.Minute)
	if _, err := e.Drain(context.Background(), syncq.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := stateCounts(t, s); got[edge.OutboxDelivered] != int64(docs) {
		t.Fatalf("after the wait the outbox is %v, want all %d delivered", got, docs)
	}
	MustVerifyExactlyOnce(t, path, h.Store)

	// Ensure the file arriving later and its receipt change nothing: each document is confirmed once.
	signed, _, err := h.Client(t).PushExport(context.Background(), data, h.ReceiptKey())
	if err != nil {
		t.Fatal(err)
	}
	ir, err := syncq.ImportReceipt(ctx, s, signed, syncq.ImportOptions{HubKey: h.ReceiptKey(), NodeKey: key.Public().(ed25519.PublicKey)})
	if err != nil || ir.Confirmed != 0 || ir.Already != docs-1 {
		t.Fatalf("late receipt: %+v (err %v), want all %d confirmed before", ir, err, docs-1)
	}
	if got := edgetest.MustCount(t, edgetest.MustRawDB(t, path), `SELECT count(*) FROM audit_log WHERE action = ?`, edge.ActionOutboxDeliver); got != docs {
		t.Fatalf("%d delivery audit entries, want one per document (%d)", got, docs)
	}
	MustVerifyExactlyOnce(t, path, h.Store)
}

func TestExport_NextExportCarriesUnconfirmedDocumentsFirst(t *testing.T) {
	t.Parallel()
	ctx := edgetest.Clerk()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	docs := MustSeed(t, s, 3, 9)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)
	_, first := MustExport(t, s, h, key, 0)
	more := MustSeed(t, s, 3, 6)

	// Ensure a second export carries the first file's documents again, before the new ones.
	res, second := MustExport(t, s, h, key, 0)
	if res.Documents != docs+more || res.Again != docs {
		t.Fatalf("second export: %d documents, %d again; want %d, %d again", res.Documents, res.Again, docs+more, docs)
	}
	// Ensure the second file reaching the hub first, then the first, keeps order and stores nothing twice.
	signed2, _, err := h.Client(t).PushExport(context.Background(), second, h.ReceiptKey())
	if err != nil {
		t.Fatal(err)
	}
	signed1, _, err := h.Client(t).PushExport(context.Background(), first, h.ReceiptKey())
	if err != nil {
		t.Fatal(err)
	}
	opts := syncq.ImportOptions{HubKey: h.ReceiptKey(), NodeKey: key.Public().(ed25519.PublicKey)}
	for _, b := range [][]byte{signed1, signed2} {
		if _, err := syncq.ImportReceipt(ctx, s, b, opts); err != nil {
			t.Fatal(err)
		}
	}
	MustVerifyExactlyOnce(t, path, h.Store)
}

func TestImportReceipt_RefusesReceiptsNotForThisNode(t *testing.T) {
	t.Parallel()
	ctx := edgetest.Clerk()
	s := edgetest.MustOpenStore(t)
	MustSeed(t, s, 2, 4)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)
	_, data := MustExport(t, s, h, key, 0)
	signed, _, err := h.Client(t).PushExport(context.Background(), data, h.ReceiptKey())
	if err != nil {
		t.Fatal(err)
	}
	other := edgetest.MustOpenStore(t)
	MustSeed(t, other, 2, 4)

	cases := []struct {
		name string
		s    *edge.Store
		opts syncq.ImportOptions
		says string
	}{
		{"SignedByAnotherHub", s, syncq.ImportOptions{HubKey: mustNodeKey(t).Public().(ed25519.PublicKey)}, "not by the hub's key"},
		{"AnotherNodesFile", s, syncq.ImportOptions{HubKey: h.ReceiptKey(), NodeKey: mustNodeKey(t).Public().(ed25519.PublicKey)}, "another node"},
		{"AnotherNodesDatabase", other, syncq.ImportOptions{HubKey: h.ReceiptKey()}, "does not have"},
		{"NoHubKey", s, syncq.ImportOptions{}, "receipt key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Ensure the receipt is refused with a reason, and no row changes.
			if _, err := syncq.ImportReceipt(ctx, c.s, signed, c.opts); err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("err=%v, want one saying %q", err, c.says)
			}
			if got := stateCounts(t, c.s); got[edge.OutboxDelivered] != 0 {
				t.Fatalf("a refused receipt delivered %d rows", got[edge.OutboxDelivered])
			}
		})
	}
}

func TestExport_DocumentRefusedByTheHubIsQuarantined(t *testing.T) {
	t.Parallel()
	ctx := edgetest.Clerk()
	path := filepath.Join(t.TempDir(), edge.DBFileName)
	s := edgetest.MustOpenStoreAt(t, path)
	docs := MustSeed(t, s, 3, 6)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)
	// A mapper whose second document breaks a rule the hub checks (a Composition without a title).
	untitled := syncq.MapperFunc(func(ctx context.Context, it edge.OutboxItem) (string, []byte, error) {
		id, b := synctest.Document(it)
		if it.ID == 2 {
			b = bytes.Replace(b, []byte(`"title":"`+it.Document+`"`), []byte(`"title":" "`), 1)
		}
		return id, b, nil
	})
	res, err := syncq.Export(ctx, s, untitled, syncq.ExportOptions{Dir: t.TempDir(), HubKey: h.Keys.ExportKey(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(res.Path)

	// Ensure the hub stores the rest and names the refused document and why in the receipt.
	signed, r, err := h.Client(t).PushExport(context.Background(), data, h.ReceiptKey())
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Documents[1]; d.OutboxID != 2 || !strings.Contains(d.Refused, "title") || d.RemoteID != "" {
		t.Fatalf("receipt says %+v for the untitled document, want it refused for its title", d)
	}
	if n := mustArrivals(t, h.Store); n != int64(docs-1) {
		t.Fatalf("the hub stored %d versions, want %d", n, docs-1)
	}
	// Ensure import quarantines it with the hub's reason, for an administrator, and confirms the rest.
	ir, err := syncq.ImportReceipt(ctx, s, signed, syncq.ImportOptions{HubKey: h.ReceiptKey()})
	if err != nil || ir.Refused != 1 || ir.Confirmed != docs-1 {
		t.Fatalf("import = %+v (err %v), want 1 refused and %d confirmed", ir, err, docs-1)
	}
	it, err := s.OutboxItem(ctx, 2)
	if err != nil || it.State != edge.OutboxQuarantined || !strings.Contains(it.LastError, "title") {
		t.Fatalf("outbox 2 is %s (%q), want quarantined with the hub's reason", it.State, it.LastError)
	}
}

func TestHub_SigningKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := edgetest.MustOpenStore(t)
	MustSeed(t, s, 1, 2)
	key := mustNodeKey(t)
	h := MustOpenExportHub(t, key)
	pub := key.Public().(ed25519.PublicKey)

	// Ensure one key belongs to one node.
	if err := h.Store.SetSigningKey(ctx, "phc-other", pub); !errors.Is(err, hub.ErrKeyTaken) {
		t.Fatalf("the same key for another node: err=%v, want ErrKeyTaken", err)
	}
	// Ensure a node registered by its key alone (no token) is listed with the key's fingerprint.
	other := mustNodeKey(t)
	if err := h.Store.SetSigningKey(ctx, "subcentre-7", other.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	nodes, err := h.Store.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[1].Name != "subcentre-7" || nodes[1].HasToken ||
		nodes[1].SigningKey != exportfile.Fingerprint(other.Public().(ed25519.PublicKey)) {
		t.Fatalf("nodes = %+v (err %v)", nodes, err)
	}
	// Ensure a revoked node's files are refused whole.
	_, data := MustExport(t, s, h, key, 0)
	if err := h.Store.RevokeNode(ctx, "node-test"); err != nil {
		t.Fatal(err)
	}
	_, err = h.Exports.Accept(ctx, data, "test")
	var fe *hub.FileError
	if !errors.As(err, &fe) || fe.Status != http.StatusForbidden || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked node's file: err=%v, want 403 saying it is revoked", err)
	}
	if n := mustArrivals(t, h.Store); n != 0 {
		t.Fatalf("the hub stored %d versions of a revoked node's file", n)
	}
}
