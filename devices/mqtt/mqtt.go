package mqtt

import (
	"log/slog"

	"github.com/healthpost/healthpost/devices"
	"github.com/healthpost/healthpost/edge"
)

// New returns the MQTT subsystem cfg asks for: a Subscriber to the external
// broker when cfg.Broker is set, else the embedded Broker listening on
// cfg.Listen, or nil when cfg.Listen is empty too (MQTT is off). Open it
// with the node (edge.Node.Add).
func New(store *edge.Store, in *devices.Ingestor, logger *slog.Logger, cfg edge.MQTTConfig, nodeID string) edge.Subsystem {
	switch {
	case cfg.Broker != "":
		return NewSubscriber(store, in, logger, cfg, nodeID)
	case cfg.Listen != "":
		return NewBroker(store, in, logger, cfg, nodeID)
	}
	return nil
}
