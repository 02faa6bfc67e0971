// Package mqtt brings device readings in over MQTT, either through a broker
// embedded in the node (Broker, mochi-mqtt; the default, listening on
// :1883, so devices need nothing else on the LAN) or from an external broker
// such as mosquitto or EMQX (Subscriber, paho). Payloads are decoded by
// package devices/senml and saved through devices.Ingestor.
//
// # Topics
//
// Every topic of node <node> (facility.node_id, or the ID the node
// generated) lives under healthpost/<node>/; a device's under
// healthpost/<node>/devices/<device-name>/, its name as registered
// (healthpost device add). MQTT topics may hold spaces and non-ASCII
// letters, so "BP monitor 2" is used as it is.
//
//	healthpost/<node>/devices/<device-name>/readings   QoS 1, not retained: the device publishes
//	                                                   its readings (devices/senml/README.md)
//	healthpost/<node>/devices/<device-name>/status     retained: "online" or "offline"; the device's
//	                                                   last will, "offline" retained QoS 1, goes here
//
// The patient travels in the payload, never in the topic: brokers log
// topics. A device logs in with its registered name as username and its
// token (shown once by healthpost device add) as password, and should
// connect with a persistent session (CleanSession=false) so that a publish
// the node did not acknowledge is sent again when it reconnects.
//
// # The embedded broker
//
// Anonymous clients are refused. A device may publish and subscribe only
// under its own prefix, and set a last will only there; it may also
// subscribe to every device's status topic (.../devices/+/status), which
// carries no PHI, so that a display can show which devices are online.
//
// A device's registry entry (codec, code table) is read when it logs in; a
// change applies from its next connection.
//
// A QoS 1 publish on a readings topic is acknowledged only after its
// readings committed, in one of two ways (Broker.Pipeline):
//
//   - Pipeline 1: the readings are committed inside mochi's OnPublish hook.
//     mochi writes the PUBACK only after that hook returns, and none when it
//     returns packets.ErrRejectPacket (mochi v2.7.9 server.go,
//     processPublish: the hook is called at line 913, the reject branch
//     returns at 916-917 before any ack is built, the PUBACK is built and
//     written at 941-952). A plain error would not do: on MQTT 3.1.1 it
//     falls through to the success PUBACK (920 applies to MQTT 5 only).
//   - Pipeline above 1 (the default): the hook decodes the publish, hands
//     its readings to the store's group commit without waiting
//     (edge.Store.QueueReadings), queues it on its connection's pipeline and
//     returns packets.ErrRejectPacket, so mochi writes nothing; the
//     pipeline waits for each commit (up to Pipeline publishes of one
//     connection at once, so a device's publishes share group commits) and
//     writes each PUBACK itself after its commit, in the order the
//     publishes arrived.
//
// Either way a device's PUBACK means its readings are on disk, and a failed
// commit gets no PUBACK, on MQTT 3.1.1 and 5 alike, so the device sends it
// again. A payload that resending will not fix (not SenML or the envelope,
// or no code the node knows) is counted and kept raw; MQTT 5 devices get a
// PUBACK with reason code 0x99 or 0x83, MQTT 3.1.1 devices, which have no
// negative PUBACK, none. The broker also publishes each device's retained
// status itself when it connects and disconnects, and records it on the
// device (devices.Ingestor.SetStatus).
//
// # An external broker
//
// With mqtt.broker set, the node connects as client healthpost-<node> with a
// persistent session, subscribes with QoS 1 to
// healthpost/<node>/devices/+/readings and .../+/status, and acknowledges
// each message only after its readings committed. The broker must do the
// checking the embedded broker does; for mosquitto:
//
//	# /etc/mosquitto/conf.d/healthpost.conf
//	listener 1883
//	allow_anonymous false
//	password_file /etc/mosquitto/passwd     # mosquitto_passwd -b ... "BP monitor 2" <token>
//	acl_file /etc/mosquitto/acl
//	max_inflight_messages 100               # the node commits up to this many at once
//
//	# /etc/mosquitto/acl
//	user healthpost-node                    # the node's own login (mqtt.username)
//	topic read healthpost/<node>/devices/#
//	pattern readwrite healthpost/<node>/devices/%u/#
//
// # What this package must never do
//
//   - acknowledge a reading before it committed (invariant 1): no PUBACK
//     from the embedded broker, no acknowledgement to an external one, until
//     devices.Ingestor.Ingest has returned nil;
//   - acknowledge a reading that did not commit, even when the device or
//     broker will never send it again: an unacknowledged message waits;
//   - let one device publish as another, or read another's topics;
//   - log PHI: mochi logs whole packets on some errors, so its log lines lose
//     every packet attribute (brokerLogHandler); our lines carry device
//     names, counts and plain sentences, never payloads, values or patient
//     identifiers;
//   - pass readings on: a committed reading is not retained by the broker
//     nor forwarded to subscribers; it lives in the store.
package mqtt
