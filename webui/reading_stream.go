package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/healthpost/healthpost/edge"
)

// Live readings: while a device is bound to a patient, the visit form
// listens on /patients/{id}/readings (server-sent events) and each reading
// appears as it commits. The stream wakes when an outbox row commits (every
// assigned reading adds one, after its commit) and polls every few seconds
// for the rest (rejected readings add none).

const (
	streamPoll      = 2 * time.Second
	streamHeartbeat = 15 * time.Second
	streamRecheck   = 30 * time.Second
)

// streamEvent is one reading as the page's script gets it.
type streamEvent struct {
	ObservationID string `json:"obs,omitempty"`
	Name          string `json:"name"`
	Value         string `json:"value"`
	Unit          string `json:"unit"`
	Device        string `json:"device"`
	At            string `json:"at"`
	Rejected      string `json:"rejected,omitempty"`
}

func (s *Server) streamReadings(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ss := sessionFrom(ctx)
	pid := r.PathValue("id")
	since := time.UnixMilli(atoi64(r.URL.Query().Get("since")))
	after := atoi64(r.Header.Get("Last-Event-ID"))
	// Reading the patient audits the watching, once.
	if _, err := s.Store.Patient(ctx, pid); err != nil {
		s.fail(w, r, err)
		return
	}
	c := s.tpl.cats.get(s.tpl.cats.pick(r, ss.User.Language))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	fmt.Fprint(w, "retry: 3000\n\n")
	rc.Flush()

	deadline := time.NewTimer(s.LiveReadings)
	defer deadline.Stop()
	poll := time.NewTicker(streamPoll)
	defer poll.Stop()
	lastWrite, lastCheck := time.Now(), time.Now()
	for {
		changed := s.Store.OutboxChanged()
		rs, err := s.Store.PatientReadings(ctx, pid, after, since, 50)
		if err != nil {
			s.Logger.Warn("live readings stopped", "err", err, edge.LogKeyPatientID, pid)
			return
		}
		for _, rd := range rs {
			lr := liveReadingOf(c, rd, false)
			b, _ := json.Marshal(streamEvent{ObservationID: rd.ObservationID, Name: lr.Name, Value: lr.Value, Unit: lr.Unit,
				Device: lr.Device, At: formatTime(c, rd.EffectiveAt), Rejected: rd.Rejected})
			fmt.Fprintf(w, "id: %d\nevent: reading\ndata: %s\n\n", rd.Seq, b)
			after = rd.Seq
		}
		if len(rs) > 0 {
			rc.Flush()
			lastWrite = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.ctx.Done():
			return
		case <-deadline.C:
			fmt.Fprint(w, "event: end\ndata: {}\n\n")
			rc.Flush()
			return
		case <-changed:
		case <-poll.C:
			if time.Since(lastWrite) > streamHeartbeat {
				fmt.Fprint(w, ": still here\n\n")
				if rc.Flush() != nil {
					return
				}
				lastWrite = time.Now()
			}
			if time.Since(lastCheck) > streamRecheck {
				// A signed-out or locked tablet stops getting readings.
				if cur, err := s.Store.WebSession(ctx, ss.token); err != nil || cur.Locked {
					return
				}
				lastCheck = time.Now()
			}
		}
	}
}

func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}
