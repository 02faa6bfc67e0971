package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/devices/senml"
	"github.com/healthpost/healthpost/edge"
)

// deviceInfo is what a transport needs to know about a registered device.
type deviceInfo struct {
	dev      edge.Device
	codes    map[string]string // the device's vendor code table
	prefix   string            // its topic prefix, on the embedded broker
	readings string            // its readings topic, on the embedded broker
}

// loadDevice checks that a registered device may send over MQTT and reads
// its settings. Errors are plain sentences with the fix.
func loadDevice(dev edge.Device) (*deviceInfo, error) {
	if dev.Transport != "mqtt" {
		return nil, fmt.Errorf("%s is registered for transport %s, not mqtt", dev.Name, dev.Transport)
	}
	switch dev.Codec {
	case senml.CodecSenML, senml.CodecJSON, senml.CodecAuto:
	default:
		return nil, fmt.Errorf("%s has codec %s, which is not read over MQTT; set its codec to json, senml or auto", dev.Name, dev.Codec)
	}
	s, err := devices.ParseSettings(dev)
	if err != nil {
		return nil, err
	}
	return &deviceInfo{dev: dev, codes: s.Codes}, nil
}

// outcome is what became of one readings message.
type outcome int

const (
	// stored: every reading committed (or was a replay of one that had):
	// acknowledge.
	stored outcome = iota
	// badPayload: the payload is not SenML or the envelope; it was counted
	// and kept raw. Resending it will not help.
	badPayload
	// noKnownCode: it decoded, but no value had a code the node knows; it
	// was counted and kept raw. Resending it will not help.
	noKnownCode
	// notStored: the readings did not commit (disk, database, shutdown).
	// Never acknowledge: the device must send them again.
	notStored
)

// ingest decodes one readings payload and saves it through the Ingestor,
// returning once the readings have committed or failed. problem is a plain
// sentence without PHI for the log and the device page.
func ingest(ctx context.Context, in *devices.Ingestor, d *deviceInfo, payload []byte, now time.Time) (o outcome, n int, problem string) {
	return save(ctx, in, d, payload, decode(d, payload, now))
}

// decoded is a readings payload decoded but not yet stored.
type decoded struct {
	ms    []devices.Measurement
	codec string
	err   error
}

// decode reads a readings payload. It touches nothing: save stores what it
// found, or counts and keeps the payload when it could not be read.
func decode(d *deviceInfo, payload []byte, now time.Time) decoded {
	ms, codec, err := senml.Decode(d.dev.Codec, payload, d.dev.Name, now)
	if err != nil && codec == "" {
		codec = d.dev.Codec
	}
	return decoded{ms: ms, codec: codec, err: err}
}

// save stores what decode found and returns once it has committed or failed.
func save(ctx context.Context, in *devices.Ingestor, d *deviceInfo, payload []byte, dec decoded) (o outcome, n int, problem string) {
	if dec.err != nil {
		problem = fmt.Sprintf("%s sent a payload the node cannot read (%v); check the device's message format", d.dev.Name, dec.err)
		in.Failed(ctx, d.dev, dec.codec, payload, problem)
		return badPayload, 0, problem
	}
	n, err := in.Ingest(ctx, d.dev, dec.codec, payload, dec.ms, d.codes)
	switch {
	case errors.Is(err, devices.ErrNothingStored):
		return noKnownCode, 0, noKnownCodeProblem(d.dev.Name)
	case err != nil:
		return notStored, 0, notStoredProblem(d.dev.Name, err)
	}
	return stored, n, ""
}

func noKnownCodeProblem(device string) string {
	return fmt.Sprintf("%s sent no value with a code the node knows; add its codes to the device's code table", device)
}

func notStoredProblem(device string, err error) string {
	return fmt.Sprintf("readings from %s were not stored (%v); the device was not acknowledged and will send them again", device, err)
}
