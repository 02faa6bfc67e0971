package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/webui"
)

// syncMapper builds the mapper that turns outbox rows into FHIR documents
// (syncq/fhir through syncq.FHIRMapper), for `sync now` here and for the
// engine `serve` runs; tests replace it.
var syncMapper = func(s *edge.Store, cfg *edge.Config) (syncq.Mapper, error) {
	return syncq.NewFHIRMapper(s, cfg.Facility)
}

func (a *app) syncCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "See and drive delivery of records to the district (upstream FHIR server)",
		Long: `Records go to the upstream FHIR server (upstream.url in the config, usually
the district hub) by themselves while 'healthpost serve' runs and the link is
up. These commands show the queue, send now, and deal with documents the
upstream refused for good (quarantined).`,
	}
	cmd.AddCommand(a.syncStatusCommand(), a.syncNowCommand(), a.syncRetryCommand(), a.syncDiscardCommand(), a.syncReceiptsCommand())
	return cmd
}

// syncEngine builds the delivery engine for a running node and adds it to
// the node's subsystems; it returns nil when no upstream is configured
// (delivery off). serve calls it after the store is open and hands it to
// the web UI's sync page through webSync.
func (a *app) syncEngine(ctx context.Context, node *edge.Node, logger *slog.Logger) (*syncq.Engine, error) {
	cfg := node.Config
	if cfg.Upstream.URL == "" {
		logger.Info("delivery to the district is off: no upstream.url in the config")
		return nil, nil
	}
	m, err := syncMapper(node.Store, cfg)
	if err != nil {
		return nil, err
	}
	e, err := syncq.NewEngineFromConfig(node.Store, cfg, m)
	if err != nil {
		return nil, err
	}
	e.Logger = logger
	if err := node.Add(ctx, e); err != nil {
		return nil, err
	}
	return e, nil
}

// webSync is the delivery engine as the web UI's sync page sees it
// (webui.SyncEngine): webui never imports syncq, so its status is
// translated here.
type webSync struct{ e *syncq.Engine }

// webSyncStates maps the engine's states to the web UI's.
var webSyncStates = map[string]string{
	syncq.StateIdle:       webui.SyncIdle,
	syncq.StateDelivering: webui.SyncDelivering,
	syncq.StateBackoff:    webui.SyncBackoff,
	syncq.StateOffline:    webui.SyncOffline,
	syncq.StateClosed:     webui.SyncClosed,
	syncq.StateBudget:     webui.SyncOverBudget,
	syncq.StateStopped:    webui.SyncStopped,
}

func (w webSync) TriggerNow(trigger string) { w.e.TriggerNowBy(trigger) }
func (w webSync) Changed() <-chan struct{}  { return w.e.Changed() }

func (w webSync) Status() webui.SyncStatus {
	st := w.e.Status()
	state, ok := webSyncStates[st.State]
	if !ok {
		state = st.State
	}
	return webui.SyncStatus{State: state, Upstream: st.Upstream, PausedUntil: st.PausedUntil,
		ConsecutiveFailures: st.ConsecutiveFailures, LastSuccess: st.LastSuccess, LastError: st.LastError,
		LastErrorAt: st.LastErrorAt, Run: st.Run}
}

// syncStatus is what `sync status --json` prints.
type syncStatus struct {
	Upstream      string             `json:"upstream"`
	Counts        []edge.OutboxCount `json:"counts"`
	OldestPending time.Time          `json:"oldest_pending,omitzero"`
	LastDelivered time.Time          `json:"last_delivered,omitzero"`
	LastError     *edge.SyncRun      `json:"last_error,omitempty"`
	Quarantined   []edge.OutboxItem  `json:"quarantined"`
	Runs          []edge.SyncRun     `json:"runs"`
	// Exports is what waits on USB export receipts.
	Exports edge.ExportWaits `json:"exports"`
}

var laneNames = []string{edge.LaneAlert: "alert", edge.LaneClinical: "clinical", edge.LaneBulk: "bulk"}

func (a *app) syncStatusCommand() *cobra.Command {
	var runs int
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the queue by state and lane, the oldest waiting record, the last success and error, quarantined documents and recent runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				var st syncStatus
				st.Upstream = cfg.Upstream.URL
				stats, err := s.OutboxStats(ctx)
				if err != nil {
					return err
				}
				st.Counts, st.OldestPending, st.LastDelivered = stats.Counts, stats.OldestPending, stats.LastDelivered
				if st.Counts == nil {
					st.Counts = []edge.OutboxCount{}
				}
				if r, err := s.LastSyncError(ctx); err == nil {
					st.LastError = &r
				} else if !errors.Is(err, edge.ErrNotFound) {
					return err
				}
				q := edge.OutboxQuarantined
				if st.Quarantined, err = s.OutboxItems(ctx, edge.OutboxFilter{State: &q, Limit: 50}); err != nil {
					return err
				}
				if st.Runs, err = s.SyncRuns(ctx, runs); err != nil {
					return err
				}
				if st.Exports, err = s.ExportWaits(ctx); err != nil {
					return err
				}
				if st.Quarantined == nil {
					st.Quarantined = []edge.OutboxItem{}
				}
				if st.Runs == nil {
					st.Runs = []edge.SyncRun{}
				}
				if a.json {
					return a.printJSON(st)
				}
				a.printSyncStatus(st)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 5, "how many recent runs to show")
	return cmd
}

func (a *app) printSyncStatus(st syncStatus) {
	w := a.stdout
	up := st.Upstream
	if up == "" {
		up = "none: delivery is off (set upstream.url in the config)"
	}
	fmt.Fprintf(w, "Upstream:        %s\n", up)
	states := []string{edge.OutboxPending, edge.OutboxExported, edge.OutboxQuarantined, edge.OutboxDelivered, edge.OutboxDiscarded}
	grid := map[string][3]int64{}
	for _, c := range st.Counts {
		g := grid[c.State]
		if c.Lane >= 0 && c.Lane < 3 {
			g[c.Lane] = c.Count
		}
		grid[c.State] = g
	}
	fmt.Fprintln(w, "Queue:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATE\tALERT\tCLINICAL\tBULK")
	for _, s := range states {
		g := grid[s]
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\n", s, g[0], g[1], g[2])
	}
	tw.Flush()
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%s (%s ago)", t.Local().Format("02 Jan 2006 15:04"), time.Since(t).Round(time.Minute))
	}
	if !st.OldestPending.IsZero() {
		fmt.Fprintf(w, "Oldest waiting:  %s\n", when(st.OldestPending))
	}
	fmt.Fprintf(w, "Last delivered:  %s\n", when(st.LastDelivered))
	if ex := st.Exports; ex.Exported > 0 {
		fmt.Fprintf(w, "USB export:      %d documents await the hub's receipt ('healthpost import RECEIPT'), %d later ones wait behind them;\n", ex.Exported, ex.Held)
		fmt.Fprintf(w, "                 from %s they go by the link, when there is one.\n", ex.Until.Local().Format("02 Jan 2006 15:04"))
	}
	if st.LastError != nil {
		fmt.Fprintf(w, "Last error:      %s: %s\n", when(st.LastError.StartedAt), st.LastError.LastError)
	} else {
		fmt.Fprintln(w, "Last error:      none")
	}
	if len(st.Quarantined) > 0 {
		fmt.Fprintf(w, "\nRefused by the upstream (%d), waiting for you:\n", len(st.Quarantined))
		for _, it := range st.Quarantined {
			fmt.Fprintf(w, "  %d  %s of %s %s v%d\n      %s\n", it.ID, it.Document, it.Entity, it.EntityID, it.EntityVersion, it.LastError)
		}
		fmt.Fprintln(w, "  Correct the record if the reason says so, then 'healthpost sync retry ID',")
		fmt.Fprintln(w, "  or give up on it with 'healthpost sync discard ID --reason \"why\"'.")
	}
	if len(st.Runs) > 0 {
		fmt.Fprintln(w, "\nRecent runs:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  STARTED\tBY\tDELIVERED\tFAILED\tREFUSED\tON THE WIRE\tLAST ERROR")
		for _, r := range st.Runs {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.StartedAt.Local().Format("02 Jan 15:04"), r.Trigger,
				r.Delivered, r.Failed, r.Quarantined, kb(r.BytesOut+r.BytesIn), oneLine(r.LastError, 60))
		}
		tw.Flush()
	}
}

func kb(n int64) string {
	if n < 10<<10 {
		return strconv.FormatInt(n, 10) + " B"
	}
	if n < 10<<20 {
		return strconv.FormatInt(n>>10, 10) + " kB"
	}
	return strconv.FormatInt(n>>20, 10) + " MB"
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (a *app) syncNowCommand() *cobra.Command {
	var wait, ignoreLimits bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "now",
		Short: "Send every waiting record now, with progress; --wait keeps trying through failures",
		Long: `Send every waiting record to the upstream now, from this process (the running
node may send at the same time; nothing is sent twice). Records waiting for a
retry are tried at once. Without --wait it stops at the first failure of the
upstream; with --wait it keeps trying, backing off, until nothing waits or
--timeout passes. Time windows and the daily budget of a metered link are
respected unless --ignore-limits.`,
		Example: "  healthpost sync now\n  healthpost sync now --wait --timeout 30m",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if cfg.Upstream.URL == "" {
					return &exitError{code: 1, err: errors.New("no upstream configured; set upstream.url (and upstream.token) in the config, e.g. HEALTHPOST_UPSTREAM_URL=https://hub.district.example/fhir")}
				}
				if cfg.Upstream.Token == "" && cfg.SecretsUnreadable != "" {
					fmt.Fprintf(a.stderr, "Cannot read %s, where the hub's token is kept; run this command with sudo.\n", cfg.SecretsUnreadable)
				}
				m, err := syncMapper(s, cfg)
				if err != nil {
					return err
				}
				e, err := syncq.NewEngineFromConfig(s, cfg, m)
				if err != nil {
					return err
				}
				e.Trigger = edge.SyncTriggerCLI
				// The command reports failures itself; the log gets only what it cannot.
				e.Logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelError}))
				e.IgnoreLimits = ignoreLimits
				stats, err := s.OutboxStats(ctx)
				if err != nil {
					return err
				}
				var waiting int64
				for _, c := range stats.Counts {
					if c.State == edge.OutboxPending {
						waiting += c.Count
					}
				}
				if timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, timeout)
					defer cancel()
				}
				shown := false
				progress := func(st syncq.Status) {
					if a.json {
						return
					}
					shown = true
					r := st.Run
					fmt.Fprintf(a.stderr, "\r%s  %d of %d delivered, %d to retry, %d refused, %s  %-12s",
						bar(r.Delivered+r.Quarantined, waiting, 24), r.Delivered, waiting, r.Failed, r.Quarantined, kb(r.BytesOut+r.BytesIn), st.State)
				}
				st, derr := e.Drain(ctx, syncq.DrainOptions{Expedite: true, Wait: wait, Progress: progress})
				if shown {
					fmt.Fprintln(a.stderr)
				}
				left, err := s.OutboxStats(context.WithoutCancel(ctx))
				if err != nil {
					return err
				}
				var pending, quarantined int64
				for _, c := range left.Counts {
					switch c.State {
					case edge.OutboxPending:
						pending += c.Count
					case edge.OutboxQuarantined:
						quarantined += c.Count
					}
				}
				// Documents behind a USB export wait for its receipt, not for the link.
				exports, err := s.ExportWaits(context.WithoutCancel(ctx))
				if err != nil {
					return err
				}
				pending -= exports.Held
				if a.json {
					if err := a.printJSON(map[string]any{"status": st, "pending": pending, "quarantined": quarantined, "exports": exports, "error": errString(derr)}); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(a.stdout, "Delivered %d documents to %s (%s on the wire).\n", st.Run.Delivered, cfg.Upstream.URL, kb(st.Run.BytesOut+st.Run.BytesIn))
					if st.Run.Quarantined > 0 {
						fmt.Fprintf(a.stdout, "%d refused by the upstream; 'healthpost sync status' shows why.\n", st.Run.Quarantined)
					}
					if pending > 0 {
						fmt.Fprintf(a.stdout, "%d still waiting", pending)
						switch st.State {
						case syncq.StateClosed:
							fmt.Fprint(a.stdout, " for the link's time window (--ignore-limits sends now)")
						case syncq.StateBudget:
							fmt.Fprint(a.stdout, ": today's byte budget is spent (--ignore-limits sends now)")
						}
						fmt.Fprintln(a.stdout, ".")
					}
					if exports.Exported > 0 {
						fmt.Fprintf(a.stdout, "%d documents in USB export files (and %d behind them) wait for the hub's receipt until %s.\n",
							exports.Exported, exports.Held, exports.Until.Local().Format("02 Jan 2006 15:04"))
					}
				}
				switch {
				case derr != nil && errors.Is(derr, context.DeadlineExceeded):
					return fmt.Errorf("stopped after --timeout %v with %d documents waiting; the running node keeps trying", timeout, pending)
				case derr != nil:
					var de *syncq.DeliveryError
					if errors.As(derr, &de) && de.Kind == syncq.KindAuth {
						return fmt.Errorf("%w; check upstream.token (the hub issues one with 'healthpost hub token add NODE')", derr)
					}
					return fmt.Errorf("%w; the running node keeps trying, or run 'healthpost sync now --wait'", derr)
				case wait && pending > 0 && st.State != syncq.StateClosed && st.State != syncq.StateBudget:
					return fmt.Errorf("%d documents still waiting", pending)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&wait, "wait", false, "keep trying through failures until nothing waits (or --timeout)")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long, e.g. 30m (default: no limit)")
	f.BoolVar(&ignoreLimits, "ignore-limits", false, "send even outside upstream.windows or over upstream.daily_budget_mb")
	return cmd
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// bar draws a progress bar of width cells.
func bar(done, total int64, width int) string {
	if total <= 0 {
		total = max(done, 1)
	}
	n := int(min(done, total) * int64(width) / total)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func parseOutboxID(args []string, example string) (int64, error) {
	if len(args) != 1 {
		return 0, usageError("outbox item ID required ('healthpost sync status' lists refused ones)", example)
	}
	id, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError(fmt.Sprintf("%q is not an outbox item ID (a number)", args[0]), example)
	}
	return id, nil
}

// explainOutboxError names the item and what to do.
func explainOutboxError(id int64, err error) error {
	switch {
	case errors.Is(err, edge.ErrNotFound):
		return fmt.Errorf("no outbox item %d; 'healthpost sync status' lists the refused ones", id)
	case errors.Is(err, edge.ErrOutboxState):
		return fmt.Errorf("%s; only refused (quarantined) or waiting items can be retried or discarded",
			strings.TrimSuffix(err.Error(), ": "+edge.ErrOutboxState.Error()))
	}
	return err
}

func (a *app) syncRetryCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "retry ID",
		Short:   "Put a refused (quarantined) document back in line to be sent",
		Example: "  healthpost sync retry 42",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseOutboxID(args, "healthpost sync retry 42")
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if err := s.RetryOutbox(ctx, id); err != nil {
					return explainOutboxError(id, err)
				}
				if a.json {
					return a.printJSON(map[string]any{"retried": id})
				}
				fmt.Fprintf(a.stdout, "Outbox item %d will be sent again; the running node picks it up now, or run 'healthpost sync now'.\n", id)
				return nil
			})
		},
	}
}

func (a *app) syncDiscardCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "discard ID --reason TEXT",
		Short:   "Give up on a refused document for good (audited with your reason)",
		Example: `  healthpost sync discard 42 --reason "entered twice; the other copy was delivered"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			example := `healthpost sync discard 42 --reason "entered twice; the other copy was delivered"`
			id, err := parseOutboxID(args, example)
			if err != nil {
				return err
			}
			if strings.TrimSpace(reason) == "" {
				return usageError("--reason required: say why this document will never be sent (it goes to the audit log)",
					strings.Replace(example, "42", strconv.FormatInt(id, 10), 1))
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if err := s.DiscardOutbox(ctx, id, reason); err != nil {
					return explainOutboxError(id, err)
				}
				if a.json {
					return a.printJSON(map[string]any{"discarded": id, "reason": reason})
				}
				fmt.Fprintf(a.stdout, "Outbox item %d discarded; it will never be sent. The audit log records why.\n", id)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the document will never be sent (required, audited)")
	return cmd
}

func (a *app) syncReceiptsCommand() *cobra.Command {
	var from, to, out string
	cmd := &cobra.Command{
		Use:   "receipts --from DATE [--to DATE] --out FILE",
		Short: "Export a signed report of which records each upstream acknowledged, and when",
		Long: `Write a report of every document delivered from --from up to (not including)
--to: the outbox item, the upstream, the id and version the upstream gave it,
and when. The report is signed with this node's key (kept in the data
directory); 'healthpost sync receipts verify FILE' checks it anywhere, and
prints the key's fingerprint to compare with the one printed here.`,
		Example: `  healthpost sync receipts --from 2026-10-01 --to 2026-11-01 --out /media/usb/receipts-oct.json
  healthpost sync receipts verify /media/usb/receipts-oct.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("--out FILE required", "healthpost sync receipts --from 2026-10-01 --out receipts.json")
			}
			parse := func(flag, v string, def time.Time) (time.Time, error) {
				if v == "" {
					return def, nil
				}
				t, err := time.ParseInLocation(time.DateOnly, v, time.Local)
				if err != nil {
					return t, usageError(fmt.Sprintf("--%s %q is not a date like 2026-10-01", flag, v), "healthpost sync receipts --from 2026-10-01 --to 2026-11-01 --out receipts.json")
				}
				return t, nil
			}
			now := time.Now()
			toT, err := parse("to", to, now)
			if err != nil {
				return err
			}
			fromT, err := parse("from", from, toT.AddDate(0, -1, 0))
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				key, err := syncq.LoadOrCreateSigningKey(filepath.Join(cfg.DataDir, syncq.SigningKeyFileName))
				if err != nil {
					return err
				}
				r, p, err := syncq.BuildReceiptReport(ctx, s, fromT, toT, now, key)
				if err != nil {
					return err
				}
				if err := syncq.WriteReceiptReport(out, r); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
				fp := syncq.Fingerprint(key.Public().(ed25519.PublicKey))
				if a.json {
					return a.printJSON(map[string]any{"file": out, "receipts": len(p.Receipts), "fingerprint": fp})
				}
				fmt.Fprintf(a.stdout, "Wrote %d receipts (%s to %s) to %s.\nSigned by this node's key %s.\n",
					len(p.Receipts), fromT.Format(time.DateOnly), toT.Format(time.DateOnly), out, fp)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first day, YYYY-MM-DD (default: a month before --to)")
	f.StringVar(&to, "to", "", "day after the last, YYYY-MM-DD (default: now)")
	f.StringVar(&out, "out", "", "file to write the signed report to")
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE",
		Short: "Check a receipt report's signature and summarise it",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("report file required", "healthpost sync receipts verify receipts.json")
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var r syncq.ReceiptReport
			if err := json.Unmarshal(b, &r); err != nil {
				return fmt.Errorf("%s is not a receipt report: %w", args[0], err)
			}
			p, fp, err := r.Verify()
			if err != nil {
				return &exitError{code: 3, err: fmt.Errorf("%s: %w; do not trust it", args[0], err)}
			}
			if a.json {
				return a.printJSON(map[string]any{"ok": true, "fingerprint": fp, "payload": p})
			}
			ups := map[string]int{}
			for _, l := range p.Receipts {
				ups[l.Upstream]++
			}
			fmt.Fprintf(a.stdout, "Signature good: key %s, node %s, %s to %s, %d receipts.\n",
				fp, p.NodeID, p.From.Local().Format(time.DateOnly), p.To.Local().Format(time.DateOnly), len(p.Receipts))
			for u, n := range ups {
				fmt.Fprintf(a.stdout, "  %s: %d\n", u, n)
			}
			return nil
		},
	})
	return cmd
}
