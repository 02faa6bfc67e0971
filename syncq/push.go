package syncq

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"

	"github.com/healthpost/healthpost/syncq/exportfile"
)

// ExportFilePath is where, under the FHIR base, the hub takes export files
// (POST, the file as the body).
const ExportFilePath = "/$export-file"

// PushExport uploads a USB export file to the hub and returns the hub's
// signed receipt. It checks the file before sending (a file cut short on
// the way to the office is refused here, not after the upload) and checks
// that the receipt answers this file; with hubKey set it also checks the
// hub's signature. Pushing the same file again stores nothing twice and
// returns a receipt naming the same versions.
func (c *Client) PushExport(ctx context.Context, data []byte, hubKey ed25519.PublicKey) ([]byte, *exportfile.Receipt, error) {
	f, err := exportfile.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+ExportFilePath, bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	status, h, body, derr := c.do(req)
	if derr != nil {
		return nil, nil, derr
	}
	if status != http.StatusOK {
		return nil, nil, classify(status, h, body, c.clock())
	}
	r, err := exportfile.ParseReceipt(body, hubKey)
	if err != nil {
		return nil, nil, fmt.Errorf("the hub's answer: %w", err)
	}
	if !r.Verifies(f) {
		return nil, nil, fmt.Errorf("%w: the hub's answer is the receipt of another file (export %s)", exportfile.ErrBadReceipt, r.ExportID)
	}
	if len(r.Documents) != f.Header.Documents {
		return nil, nil, fmt.Errorf("%w: the receipt accounts for %d documents, the file holds %d", exportfile.ErrBadReceipt, len(r.Documents), f.Header.Documents)
	}
	return body, r, nil
}
