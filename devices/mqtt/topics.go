package mqtt

import "strings"

// Topic layout. Every topic of a node lives under healthpost/<node>/, and a
// device's under healthpost/<node>/devices/<device-name>/.
const (
	// TopicRoot is the first level of every topic.
	TopicRoot = "healthpost"
	// ReadingsLevel is the last level of a device's readings topic.
	ReadingsLevel = "readings"
	// StatusLevel is the last level of a device's retained status topic.
	StatusLevel = "status"

	// StatusOnline and StatusOffline are the payloads of the status topic.
	// StatusOffline is also what a device's last will says.
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// DevicePrefix is the topic prefix a device may publish and subscribe under:
// "healthpost/<node>/devices/<device>/".
func DevicePrefix(node, device string) string {
	return TopicRoot + "/" + node + "/devices/" + device + "/"
}

// ReadingsTopic is where a device publishes its readings, QoS 1.
func ReadingsTopic(node, device string) string { return DevicePrefix(node, device) + ReadingsLevel }

// StatusTopic is the device's retained status, "online" or "offline".
func StatusTopic(node, device string) string { return DevicePrefix(node, device) + StatusLevel }

// ReadingsFilter matches every device's readings topic on a node; the
// external-broker subscriber subscribes to it.
func ReadingsFilter(node string) string {
	return TopicRoot + "/" + node + "/devices/+/" + ReadingsLevel
}

// StatusFilter matches every device's status topic on a node.
func StatusFilter(node string) string { return TopicRoot + "/" + node + "/devices/+/" + StatusLevel }

// parseDeviceTopic splits "healthpost/<node>/devices/<device>/<level>" and
// reports whether topic has that shape for this node.
func parseDeviceTopic(node, topic string) (device, level string, ok bool) {
	rest, ok := strings.CutPrefix(topic, TopicRoot+"/"+node+"/devices/")
	if !ok {
		return "", "", false
	}
	device, level, ok = strings.Cut(rest, "/")
	if !ok || device == "" || strings.Contains(level, "/") {
		return "", "", false
	}
	return device, level, true
}

// validNodeID reports whether id can be a topic level: not empty, and no
// '/', '+', '#' or NUL.
func validNodeID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/+#\x00")
}
