package webui

import (
	"net/http"
	"slices"

	"github.com/healthpost/healthpost/edge"
)

// Who may use a route. Roles are edge.Role*; a route lists the roles that
// may use it, and a role not listed gets 403.
var (
	rolesClinical = []string{edge.RoleHealthWorker, edge.RoleDoctor}
	rolesInbox    = []string{edge.RoleHealthWorker, edge.RoleDoctor, edge.RoleTechnician}
	rolesAdmin    = []string{edge.RoleAdmin}
	rolesDevices  = []string{edge.RoleAdmin, edge.RoleTechnician}
	rolesAnyone   = edge.Roles
)

// access is a route's policy.
type access struct {
	// public routes need no session: sign-in, assets, the health probe.
	public bool
	// roles may use the route; the session must exist and be unlocked.
	roles []string
	// whileLocked routes work on a locked session (the unlock page, sign-out).
	whileLocked bool
}

// route is one line of the route table.
type route struct {
	pattern string
	access  access
	handler http.HandlerFunc
}

// routeTable lists every route with who may use it. It is the one place
// that decides access: the middleware denies any request whose route is not
// here.
func (s *Server) routeTable() []route {
	pub := access{public: true}
	locked := access{roles: rolesAnyone, whileLocked: true}
	anyone := access{roles: rolesAnyone}
	clinical := access{roles: rolesClinical}
	return []route{
		{"GET /healthz", pub, s.health},
		{"GET /static/{hash}/{name}", pub, s.serveStatic},
		{"GET /login", pub, s.showLogin},
		{"POST /login", pub, s.submitLogin},

		{"GET /lock", locked, s.showLock},
		{"POST /unlock", locked, s.unlock},
		{"POST /logout", locked, s.logout},

		{"GET /{$}", anyone, s.showHome},
		{"POST /lock", anyone, s.lockNow},
		{"POST /session/ping", anyone, s.ping},
		{"GET /settings", anyone, s.showSettings},
		{"POST /settings/language", anyone, s.saveLanguage},
		{"POST /settings/pin", anyone, s.savePIN},

		{"GET /patients", clinical, s.searchPatients},
		{"GET /patients/new", clinical, s.newPatient},
		{"POST /patients/new/scan", clinical, s.scanPatientQR},
		{"POST /patients", clinical, s.registerPatient},
		{"GET /patients/{id}", clinical, s.showPatient},
		{"GET /patients/{id}/edit", clinical, s.editPatient},
		{"POST /patients/{id}/edit", clinical, s.updatePatient},
		{"POST /patients/{id}/allergies", clinical, s.addAllergy},
		{"GET /patients/{id}/encounters/new", clinical, s.newEncounter},
		{"POST /patients/{id}/encounters", clinical, s.createEncounter},
		{"GET /patients/{id}/readings", clinical, s.streamReadings},
		{"GET /encounters/{id}", clinical, s.showEncounter},
		{"POST /encounters/{id}", clinical, s.saveEncounter},
		{"GET /encounters/{id}/print", clinical, s.printEncounter},
		{"GET /encounters/{id}/amend", clinical, s.editEncounterAmendment},
		{"POST /encounters/{id}/amend", clinical, s.amendEncounter},
		{"GET /encounters/{id}/versions/{version}", clinical, s.showEncounterVersion},
		{"GET /lab-orders/{id}/result", clinical, s.showLabResult},
		{"POST /lab-orders/{id}/result", clinical, s.recordLabResult},
		{"POST /lab-orders/{id}/cancel", clinical, s.cancelLabOrder},

		{"GET /inbox", access{roles: rolesInbox}, s.showInbox},
		{"GET /inbox/{id}/assign", clinical, s.chooseReadingPatient},
		{"POST /inbox/{id}/assign", clinical, s.assignReading},
		{"POST /inbox/{id}/discard", access{roles: rolesInbox}, s.discardReading},

		{"GET /admin", access{roles: rolesAdmin}, s.showAdmin},
		{"POST /admin/clock", access{roles: rolesAdmin}, s.setClock},
		{"GET /admin/users", access{roles: rolesAdmin}, s.listUsers},
		{"POST /admin/users", access{roles: rolesAdmin}, s.createUser},
		{"POST /admin/users/{id}/disable", access{roles: rolesAdmin}, s.disableUser},
		{"POST /admin/users/{id}/password", access{roles: rolesAdmin}, s.resetPassword},
		{"GET /admin/devices", access{roles: rolesDevices}, s.listDevices},
		{"GET /admin/sync", access{roles: rolesAdmin}, s.showSync},
		{"POST /admin/sync/now", access{roles: rolesAdmin}, s.triggerSync},
		{"GET /admin/sync/events", access{roles: rolesAdmin}, s.streamSync},
		{"POST /admin/sync/outbox/{id}/retry", access{roles: rolesAdmin}, s.retryOutbox},
		{"POST /admin/sync/outbox/{id}/discard", access{roles: rolesAdmin}, s.discardOutbox},
		{"GET /admin/facility", access{roles: rolesAdmin}, s.showFacility},
		{"POST /admin/facility", access{roles: rolesAdmin}, s.saveFacility},
	}
}

// routes builds the mux from the route table and wraps it, once, in the
// middleware: outer (recover, headers, gzip, body limit), then session →
// role → CSRF → audit.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	policy := map[string]access{}
	for _, rt := range s.routeTable() {
		mux.Handle(rt.pattern, rt.handler)
		policy[rt.pattern] = rt.access
	}
	return s.outer(s.guard(mux, policy))
}

// allows reports whether the role may use the route.
func (a access) allows(role string) bool { return slices.Contains(a.roles, role) }
