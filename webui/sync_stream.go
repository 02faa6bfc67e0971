package webui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// streamSync sends the sync page's live part (syncProgress) as server-sent
// events: at once, then whenever the engine's status or the outbox changes,
// and every few seconds for what another process (`healthpost sync now`)
// changed. An event goes only when something shown changed. With no engine
// it answers 204, which tells the browser not to reconnect.
func (s *Server) streamSync(w http.ResponseWriter, r *http.Request) {
	if s.Sync == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx := r.Context()
	ss := sessionFrom(ctx)
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
	var last []byte
	lastWrite, lastCheck := time.Now(), time.Now()
	for {
		engine, outbox := s.Sync.Changed(), s.Store.OutboxChanged()
		p, err := s.syncProgress(ctx, c)
		if err != nil {
			if ctx.Err() == nil {
				s.Logger.Warn("sync progress stream stopped", "err", err)
			}
			return
		}
		if b, _ := json.Marshal(p); !bytes.Equal(b, last) {
			fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b)
			if rc.Flush() != nil {
				return
			}
			last, lastWrite = b, time.Now()
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
		case <-engine:
		case <-outbox:
		case <-poll.C:
			if time.Since(lastWrite) > streamHeartbeat {
				fmt.Fprint(w, ": still here\n\n")
				if rc.Flush() != nil {
					return
				}
				lastWrite = time.Now()
			}
			if time.Since(lastCheck) > streamRecheck {
				// A signed-out or locked tablet stops getting progress.
				if cur, err := s.Store.WebSession(ctx, ss.token); err != nil || cur.Locked {
					return
				}
				lastCheck = time.Now()
			}
		}
	}
}
