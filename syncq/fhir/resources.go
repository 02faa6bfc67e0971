package fhir

import "encoding/json"

// The FHIR R4 types below are the subset this package writes. They are
// structs, never maps, so encoding/json writes their fields in declaration
// order and the output is byte-stable. Field order follows the R4 JSON
// schema. Optional elements are omitempty: FHIR forbids empty strings,
// arrays and objects.

type coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

func concept(c coding) codeableConcept { return codeableConcept{Coding: []coding{c}} }

type reference struct {
	Reference string `json:"reference,omitempty"`
	Type      string `json:"type,omitempty"`
}

type identifier struct {
	Type     *codeableConcept `json:"type,omitempty"`
	System   string           `json:"system,omitempty"`
	Value    string           `json:"value,omitempty"`
	Assigner *reference       `json:"assigner,omitempty"`
}

type meta struct {
	VersionID   string   `json:"versionId,omitempty"`
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Profile     []string `json:"profile,omitempty"`
	Security    []coding `json:"security,omitempty"`
}

func profiles(p ...string) *meta { return &meta{Profile: p} }

type quantity struct {
	Value  json.Number `json:"value"`
	Unit   string      `json:"unit,omitempty"`
	System string      `json:"system,omitempty"`
	Code   string      `json:"code,omitempty"`
}

type period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

type humanName struct {
	Text string `json:"text"`
}

type contactPoint struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type address struct {
	Line     []string `json:"line,omitempty"`
	City     string   `json:"city,omitempty"`
	District string   `json:"district,omitempty"`
	State    string   `json:"state,omitempty"`
}

type extension struct {
	URL       string `json:"url"`
	ValueCode string `json:"valueCode,omitempty"`
}

type bundle struct {
	ResourceType string      `json:"resourceType"`
	ID           string      `json:"id"`
	Meta         *meta       `json:"meta"`
	Identifier   *identifier `json:"identifier"`
	Type         string      `json:"type"`
	Timestamp    string      `json:"timestamp"`
	Entry        []entry     `json:"entry"`
}

type entry struct {
	FullURL  string `json:"fullUrl"`
	Resource any    `json:"resource"`
}

type composition struct {
	ResourceType string          `json:"resourceType"`
	ID           string          `json:"id"`
	Meta         *meta           `json:"meta"`
	Identifier   *identifier     `json:"identifier"`
	Status       string          `json:"status"`
	Type         codeableConcept `json:"type"`
	Subject      *reference      `json:"subject"`
	Encounter    *reference      `json:"encounter,omitempty"`
	Date         string          `json:"date"`
	Author       []reference     `json:"author"`
	Title        string          `json:"title"`
	Custodian    *reference      `json:"custodian"`
	Section      []section       `json:"section"`
}

type section struct {
	Title string           `json:"title"`
	Code  *codeableConcept `json:"code,omitempty"`
	Entry []reference      `json:"entry"`
}

type patient struct {
	ResourceType string         `json:"resourceType"`
	ID           string         `json:"id"`
	Meta         *meta          `json:"meta"`
	Identifier   []identifier   `json:"identifier"`
	Name         []humanName    `json:"name,omitempty"`
	Telecom      []contactPoint `json:"telecom,omitempty"`
	Gender       string         `json:"gender,omitempty"`
	BirthDate    string         `json:"birthDate,omitempty"`
	Address      []address      `json:"address,omitempty"`
}

type organization struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Meta         *meta        `json:"meta"`
	Identifier   []identifier `json:"identifier"`
	Name         string       `json:"name"`
	Address      []address    `json:"address,omitempty"`
}

type practitioner struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Meta         *meta        `json:"meta"`
	Identifier   []identifier `json:"identifier"`
	Name         []humanName  `json:"name,omitempty"`
}

// device has no IG profile; Composition.author and Observation.device
// reference the core Device.
type device struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Identifier   []identifier     `json:"identifier"`
	DeviceName   []deviceName     `json:"deviceName,omitempty"`
	Type         *codeableConcept `json:"type,omitempty"`
	Owner        *reference       `json:"owner,omitempty"`
}

type deviceName struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type encounter struct {
	ResourceType    string                 `json:"resourceType"`
	ID              string                 `json:"id"`
	Meta            *meta                  `json:"meta"`
	Identifier      []identifier           `json:"identifier"`
	Status          string                 `json:"status"`
	Class           coding                 `json:"class"`
	Type            []codeableConcept      `json:"type,omitempty"`
	Subject         *reference             `json:"subject"`
	Participant     []encounterParticipant `json:"participant,omitempty"`
	Period          *period                `json:"period"`
	ReasonReference []reference            `json:"reasonReference,omitempty"`
	Diagnosis       []encounterDiagnosis   `json:"diagnosis,omitempty"`
	ServiceProvider *reference             `json:"serviceProvider"`
}

type encounterParticipant struct {
	Individual *reference `json:"individual"`
}

type encounterDiagnosis struct {
	Condition *reference `json:"condition"`
}

type condition struct {
	ResourceType       string            `json:"resourceType"`
	ID                 string            `json:"id"`
	Meta               *meta             `json:"meta"`
	VerificationStatus *codeableConcept  `json:"verificationStatus,omitempty"`
	Category           []codeableConcept `json:"category,omitempty"`
	Code               codeableConcept   `json:"code"`
	Subject            *reference        `json:"subject"`
	Encounter          *reference        `json:"encounter,omitempty"`
	Recorder           *reference        `json:"recorder,omitempty"`
}

type observation struct {
	ResourceType      string            `json:"resourceType"`
	ID                string            `json:"id"`
	Meta              *meta             `json:"meta"`
	Status            string            `json:"status"`
	Category          []codeableConcept `json:"category,omitempty"`
	Code              codeableConcept   `json:"code"`
	Subject           *reference        `json:"subject"`
	Encounter         *reference        `json:"encounter,omitempty"`
	EffectiveDateTime string            `json:"effectiveDateTime"`
	Issued            string            `json:"issued,omitempty"`
	Performer         []reference       `json:"performer,omitempty"`
	ValueQuantity     *quantity         `json:"valueQuantity,omitempty"`
	ValueConcept      *codeableConcept  `json:"valueCodeableConcept,omitempty"`
	Interpretation    []codeableConcept `json:"interpretation,omitempty"`
	Device            *reference        `json:"device,omitempty"`
	Component         []component       `json:"component,omitempty"`
}

type component struct {
	Code          codeableConcept `json:"code"`
	ValueQuantity *quantity       `json:"valueQuantity"`
}

type medicationRequest struct {
	ResourceType              string          `json:"resourceType"`
	ID                        string          `json:"id"`
	Meta                      *meta           `json:"meta"`
	Status                    string          `json:"status"`
	Intent                    string          `json:"intent"`
	MedicationCodeableConcept codeableConcept `json:"medicationCodeableConcept"`
	Subject                   *reference      `json:"subject"`
	Encounter                 *reference      `json:"encounter,omitempty"`
	AuthoredOn                string          `json:"authoredOn"`
	Requester                 *reference      `json:"requester"`
	DosageInstruction         []dosage        `json:"dosageInstruction"`
}

type dosage struct {
	Extension          []extension `json:"extension,omitempty"`
	Text               string      `json:"text,omitempty"`
	PatientInstruction string      `json:"patientInstruction,omitempty"`
	Timing             *timing     `json:"timing,omitempty"`
}

type timing struct {
	Repeat *timingRepeat `json:"repeat"`
}

type timingRepeat struct {
	BoundsDuration *quantity `json:"boundsDuration"`
}

type documentReference struct {
	ResourceType string              `json:"resourceType"`
	ID           string              `json:"id"`
	Meta         *meta               `json:"meta"`
	Status       string              `json:"status"`
	DocStatus    string              `json:"docStatus"`
	Type         *codeableConcept    `json:"type"`
	Subject      *reference          `json:"subject"`
	Author       []reference         `json:"author,omitempty"`
	Custodian    *reference          `json:"custodian"`
	Content      []documentContent   `json:"content"`
	Context      *documentRefContext `json:"context,omitempty"`
}

type documentContent struct {
	Attachment attachment `json:"attachment"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Data        string `json:"data"`
	Title       string `json:"title,omitempty"`
}

type documentRefContext struct {
	Encounter []reference `json:"encounter"`
}

type serviceRequest struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         *meta             `json:"meta"`
	Status       string            `json:"status"`
	Intent       string            `json:"intent"`
	Category     []codeableConcept `json:"category,omitempty"`
	Priority     string            `json:"priority,omitempty"`
	Code         *codeableConcept  `json:"code,omitempty"`
	Subject      *reference        `json:"subject"`
	Encounter    *reference        `json:"encounter,omitempty"`
	AuthoredOn   string            `json:"authoredOn,omitempty"`
	Requester    *reference        `json:"requester"`
	LocationCode []codeableConcept `json:"locationCode,omitempty"`
	ReasonCode   []codeableConcept `json:"reasonCode,omitempty"`
}

type diagnosticReport struct {
	ResourceType       string          `json:"resourceType"`
	ID                 string          `json:"id"`
	Meta               *meta           `json:"meta"`
	BasedOn            []reference     `json:"basedOn,omitempty"`
	Status             string          `json:"status"`
	Code               codeableConcept `json:"code"`
	Subject            *reference      `json:"subject"`
	Encounter          *reference      `json:"encounter,omitempty"`
	EffectiveDateTime  string          `json:"effectiveDateTime,omitempty"`
	Issued             string          `json:"issued,omitempty"`
	Performer          []reference     `json:"performer,omitempty"`
	ResultsInterpreter []reference     `json:"resultsInterpreter"`
	Result             []reference     `json:"result"`
	Conclusion         string          `json:"conclusion"`
}

type immunization struct {
	ResourceType       string                  `json:"resourceType"`
	ID                 string                  `json:"id"`
	Meta               *meta                   `json:"meta"`
	Status             string                  `json:"status"`
	VaccineCode        codeableConcept         `json:"vaccineCode"`
	Patient            *reference              `json:"patient"`
	Encounter          *reference              `json:"encounter,omitempty"`
	OccurrenceDateTime string                  `json:"occurrenceDateTime"`
	PrimarySource      bool                    `json:"primarySource"`
	Performer          []immunizationPerformer `json:"performer,omitempty"`
	ProtocolApplied    []protocolApplied       `json:"protocolApplied,omitempty"`
}

type immunizationPerformer struct {
	Actor *reference `json:"actor"`
}

type protocolApplied struct {
	Series                string `json:"series,omitempty"`
	DoseNumberPositiveInt int    `json:"doseNumberPositiveInt,omitempty"`
	DoseNumberString      string `json:"doseNumberString,omitempty"`
}
