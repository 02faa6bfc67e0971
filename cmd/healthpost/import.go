package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/healthpost/healthpost/edge"
	"github.com/healthpost/healthpost/syncq"
	"github.com/healthpost/healthpost/syncq/exportfile"
)

// receiptFiles expands the arguments: a directory stands for the receipts in it.
func receiptFiles(args []string, ext string) ([]string, error) {
	var out []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*"+ext))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("no *%s file in %s", ext, a)
		}
		out = append(out, m...)
	}
	return out, nil
}

func (a *app) importCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "import RECEIPT...",
		Short: "Read the hub's receipt of a USB export file and mark its documents delivered",
		Long: `Read the receipts the district hub wrote for this node's USB export files
('healthpost push' writes each beside its file), check the hub's signature
(upstream.receipt_key), and mark every document the hub stored as delivered,
with the id and version the hub gave it, as online delivery does. Documents
the hub refused are set aside with its reason ('healthpost sync status').
A directory stands for every receipt in it. Importing a receipt again
changes nothing.`,
		Example: "  healthpost import /media/usb/healthpost-phc-rampur-20261122-103000-1a2b3c4d.receipt.json\n  healthpost import /media/usb",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("receipt file required", "healthpost import /media/usb/FILE.receipt.json")
			}
			files, err := receiptFiles(args, exportfile.ReceiptExt)
			if err != nil {
				return err
			}
			return a.withStore(cmd, func(ctx context.Context, cfg *edge.Config, s *edge.Store) error {
				if cfg.Upstream.ReceiptKey == "" {
					return errors.New("no hub receipt key configured; set upstream.receipt_key to the key 'healthpost hub key' prints on the district hub")
				}
				hubKey, err := exportfile.ParsePublicKey(cfg.Upstream.ReceiptKey)
				if err != nil {
					return err
				}
				key, err := nodeSigningKey(cfg)
				if err != nil {
					return err
				}
				opts := syncq.ImportOptions{HubKey: hubKey, NodeKey: key.Public().(ed25519.PublicKey), Upstream: cfg.Upstream.URL}
				var results []*syncq.ImportResult
				var failed []string
				for _, f := range files {
					b, err := os.ReadFile(f)
					if err != nil {
						return err
					}
					res, err := syncq.ImportReceipt(ctx, s, b, opts)
					if err != nil {
						failed = append(failed, fmt.Sprintf("%s: %v", f, err))
						if !a.json {
							fmt.Fprintf(a.stdout, "%s: not imported, nothing changed: %v\n", f, err)
						}
						continue
					}
					results = append(results, res)
					if a.json {
						continue
					}
					fmt.Fprintf(a.stdout, "%s: %d documents confirmed delivered", filepath.Base(f), res.Confirmed)
					if res.Already > 0 {
						fmt.Fprintf(a.stdout, ", %d confirmed before", res.Already)
					}
					fmt.Fprintln(a.stdout, ".")
					if res.Refused > 0 {
						fmt.Fprintf(a.stdout, "  %d refused by the hub and set aside; 'healthpost sync status' shows why.\n", res.Refused)
					}
				}
				if a.json {
					if results == nil {
						results = []*syncq.ImportResult{}
					}
					if err := a.printJSON(map[string]any{"imported": results, "failed": failed}); err != nil {
						return err
					}
				}
				if len(failed) > 0 {
					return fmt.Errorf("%d of %d receipts not imported:\n  %s", len(failed), len(files), strings.Join(failed, "\n  "))
				}
				return nil
			})
		},
	}
}
