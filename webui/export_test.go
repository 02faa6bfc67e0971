package webui

// RouteInfo describes one route of the table, for the route tests.
type RouteInfo struct {
	Pattern     string
	Public      bool
	WhileLocked bool
	Roles       []string
}

// Routes lists the server's route table.
func Routes(s *Server) []RouteInfo {
	var out []RouteInfo
	for _, rt := range s.routeTable() {
		out = append(out, RouteInfo{Pattern: rt.pattern, Public: rt.access.public, WhileLocked: rt.access.whileLocked, Roles: rt.access.roles})
	}
	return out
}

// FormularyLabels lists how the visit form offers each formulary drug, and
// whether a prescription line typed as that label is accepted.
func FormularyLabels() map[string]bool {
	out := map[string]bool{}
	for _, d := range formulary {
		_, ok := drugByLabel(d.Label())
		out[d.Label()] = ok
	}
	return out
}
